# rkalloc: `make run` (the demonstration) and `make test` (every test) set up
# everything they need on a fresh machine. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
S := scripts

.PHONY: help setup kernel kernel-debug module module-debug rkctl host-test run test bench clean

help:
	@echo "make run     boot the guest, load rkalloc, run the demonstration"
	@echo "make test    host tests, KUnit suites and in-guest tests (default and debug kernels)"
	@echo "make bench   the in-guest comparison with the kernel's allocators"
	@echo "make setup | kernel | kernel-debug | module | module-debug | rkctl | host-test | clean"

setup:
	$(S)/setup-deps
kernel:
	$(S)/build-kernel
kernel-debug:
	$(S)/build-kernel --debug
module:
	$(S)/build-module
module-debug:
	$(S)/build-module --debug
rkctl:
	$(S)/build-rkctl
host-test:
	$(S)/host-test
run:
	$(S)/run-demo
test:
	$(S)/test-all
bench:
	$(S)/bench-all
clean:
	rm -rf out target rust/kmod/uapi_gen.rs
