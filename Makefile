# rkalloc. Two ways in (see README.md):
#
#  - as any out-of-tree module: `make` builds rkalloc.ko against
#    KDIR (default: the running kernel's /lib/modules/$(uname -r)/build),
#    `make modules_install`, `make clean`;
#  - the project's flows, which build their own kernels and boot them:
#    `make run` (the demonstration) and `make test` (every test) set up
#    everything they need on a fresh machine. `make help` lists the rest.
SHELL := /bin/bash
REPO := $(patsubst %/,%,$(dir $(realpath $(lastword $(MAKEFILE_LIST)))))
S := $(REPO)/scripts

KDIR ?= /lib/modules/$(shell uname -r)/build

.DEFAULT_GOAL := modules
.PHONY: modules modules_install clean distclean help \
	setup kernel kernel-debug kernel-uml kernel-uml-gcc \
	module module-debug module-uml module-uml-gcc rkctl host-test \
	run shell test test-shell bench man

# The kernel's own make, with what KDIR's .config says it was built with
# (ARCH=um, LLVM=, RUSTC=, BINDGEN=: scripts/kdir-args). LLVM=, RUSTC=,
# RKALLOC_KUNIT=y and INSTALL_MOD_PATH= given here reach both.
modules modules_install:
	@args=$$($(S)/kdir-args "$(KDIR)") || exit 1; \
	set -x; $(MAKE) -C "$(KDIR)" M="$(REPO)" $$args $@

# The kernel's clean for M=, then the generated UAPI view (Kbuild's
# rkalloc-uapi-rs names it; it is found here wherever it is).
clean:
	@if [ -f "$(KDIR)/Makefile" ]; then \
		arch=$$(grep -qx CONFIG_UML=y "$(KDIR)/.config" 2>/dev/null && echo ARCH=um || true); \
		set -x; $(MAKE) -C "$(KDIR)" M="$(REPO)" $$arch clean; \
	else \
		echo "KDIR=$(KDIR) does not exist: only the generated UAPI view is removed"; \
	fi
	find $(REPO)/rust -name uapi_gen.rs -delete

distclean: clean
	rm -rf $(REPO)/out $(REPO)/target

help:
	@echo "Against a kernel tree (KDIR=$(KDIR)):"
	@echo "  make [KDIR=...] [LLVM=...] [RUSTC=...] [RKALLOC_KUNIT=y]   build rkalloc.ko"
	@echo "  make modules_install [INSTALL_MOD_PATH=...]                install it"
	@echo "  make clean | distclean (also out/ and target/)"
	@echo "The project's flows (they build their own kernels under ~/.cache/rkalloc):"
	@echo "  make run      boot the guest, load rkalloc, run the demonstration"
	@echo "  make shell    boot the guest with rkalloc loaded and a shell on this terminal"
	@echo "  make test     host tests, KUnit suites and in-guest tests (default and debug kernels)"
	@echo "  make bench    the in-guest comparison with the kernel's allocators"
	@echo "  make man      rkctl's man pages into out/man (and shell completions into out/completions)"
	@echo "  make setup | kernel | kernel-debug | kernel-uml | kernel-uml-gcc"
	@echo "  make module | module-debug | module-uml | module-uml-gcc | rkctl | host-test | test-shell"

setup:
	$(S)/setup-deps
kernel:
	$(S)/build-kernel
kernel-debug:
	$(S)/build-kernel --debug
kernel-uml:
	$(S)/build-kernel --uml
kernel-uml-gcc:
	$(S)/build-kernel --uml-gcc
module:
	$(S)/build-module
module-debug:
	$(S)/build-module --debug
module-uml:
	$(S)/build-module --uml
module-uml-gcc:
	$(S)/build-module --uml-gcc
rkctl:
	$(S)/build-rkctl
host-test:
	$(S)/host-test
run:
	$(S)/run-demo
shell:
	$(S)/vm-run --shell
test:
	$(S)/test-all
test-shell:
	$(S)/test-shell
bench:
	$(S)/bench-all
man:
	cargo run -q --release --locked --manifest-path $(REPO)/Cargo.toml -p rkctl -- man $(REPO)/out/man
	mkdir -p $(REPO)/out/completions
	for sh in bash zsh fish; do \
		cargo run -q --release --locked --manifest-path $(REPO)/Cargo.toml -p rkctl -- completions $$sh > $(REPO)/out/completions/rkctl.$$sh; \
	done
	@echo "man pages: $(REPO)/out/man (man -l $(REPO)/out/man/rkctl.1); completions: $(REPO)/out/completions"
