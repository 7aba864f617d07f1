//! One fuzzing thread: picks a command, fills its argument, issues it and
//! judges the answer.
use super::*;
use super::shared::*;

/// A call ready to be issued.
pub(super) struct Prepared {
    /// The spec whose struct was drafted.
    pub(super) si: usize,
    /// How the number was made.
    pub(super) number: Number,
    /// The number issued.
    pub(super) cmd: u32,
    /// Histogram row.
    pub(super) row: usize,
    /// What the result must be.
    pub(super) expect: Expect,
    /// Where the struct went.
    pub(super) arg_ptr: Ptr,
    /// What was done to the call, for a failure report.
    pub(super) notes: Vec<String>,
    /// The struct, placed.
    pub(super) argp: mem::Placed,
    /// The user array, placed, with its role and element size.
    pub(super) array: Option<(mem::Placed, Role, usize)>,
}

/// A thread's working set.
pub(super) struct Worker<'a> {
    /// What the threads share.
    pub(super) sh: &'a Shared,
    /// The thread's number.
    pub(super) t: usize,
    /// Its generator.
    pub(super) g: Gen,
    /// Its memory for the kernel.
    pub(super) mem: Scratch,
    /// The call being drafted.
    pub(super) d: Draft,
    /// Other fds' live handles, for this call.
    pub(super) foreign: Vec<u64>,
    /// Closed fds' handles, for this call.
    pub(super) dead: Vec<u64>,
    /// What it counted.
    pub(super) counts: Counts,
}

/// How a call's command number was made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Number {
    /// The command's own number.
    Real,
    /// A number the header does not define.
    Unknown,
    /// The command's number with another size.
    WrongSize,
    /// The command's number with another direction.
    WrongDir,
}

impl<'a> Worker<'a> {
    /// Thread `t`'s worker (registers its task id).
    pub(super) fn new(sh: &'a Shared, t: usize) -> Result<Self> {
        // SAFETY: gettid has no preconditions.
        lock(&sh.tids).push((unsafe { libc::gettid() }, t));
        Ok(Worker {
            sh,
            t,
            g: Gen::new(sh.seed, t as u64),
            mem: Scratch::new().context("cannot map the fuzzer's scratch memory")?,
            d: Draft::new(),
            foreign: Vec::new(),
            dead: Vec::new(),
            counts: Counts {
                hist: vec![[0; MAX_ERRNO + 1]; sh.specs.len() + BAD_NUMBERS.len()],
                ns: vec![0; sh.specs.len() + BAD_NUMBERS.len()],
                reopen_ns: 0,
                ioctls: 0,
                races: 0,
                reopens: 0,
                checks: 0,
            },
        })
    }

    /// Runs `calls` steps: calls, reopens, close races, CHECKs.
    pub(super) fn run(&mut self, calls: u64) -> Result<()> {
        for i in 0..calls {
            match self.g.below(10_000) {
                0..=19 => {
                    let t0 = Instant::now();
                    self.sh.retire(self.g.below(self.sh.slots.len()))?;
                    self.counts.reopen_ns += t0.elapsed().as_nanos() as u64;
                    self.counts.reopens += 1;
                }
                20..=29 => self.race(i)?,
                30..=39 => self.check(i),
                _ => self.call(i),
            }
        }
        Ok(())
    }

    /// Counts a call's answer and time.
    pub(super) fn record(&mut self, row: usize, errno: i32, took: Duration) {
        self.counts.ns[row] += took.as_nanos() as u64;
        self.counts.ioctls += 1;
        self.counts.hist[row][(errno.max(0) as usize).min(MAX_ERRNO)] += 1;
    }

    /// A random slot's fd.
    pub(super) fn slot(&mut self) -> Arc<Slot> {
        let i = self.g.below(self.sh.slots.len());
        lock(&self.sh.slots[i]).clone()
    }

    /// A well-formed CHECK on one of the fds, concurrent with the rest:
    /// it must return 0.
    pub(super) fn check(&mut self, i: u64) {
        let slot = self.slot();
        let t0 = Instant::now();
        let r = sys::call(slot.fd.as_raw_fd(), uapi::cmd::check(), uapi::rkalloc_check::default());
        let took = t0.elapsed();
        let errno = r.err().unwrap_or(0);
        let row = self.row("CHECK");
        self.record(row, errno, took);
        self.counts.checks += 1;
        if let Err(why) = judge(Some("CHECK"), Expect::Success, errno) {
            self.sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: "CHECK".into(),
                number: format!("{:#x}", uapi::cmd::check()),
                arg: "(the fuzzer's own check)".into(),
                errno: errno_name(errno),
                why,
            });
        }
    }

    /// The histogram row of a command name.
    pub(super) fn row(&self, name: &str) -> usize {
        self.sh.specs.iter().position(|s| s.name == name).unwrap_or(0)
    }

    /// Picks a command by weight; when the fd holds more than its budget
    /// or many handles, frees and resets come first.
    pub(super) fn pick_spec(&mut self, tr: &Tracked) -> usize {
        let over = tr.bytes > self.sh.env.budget
            || tr.count(Kind::Pool) + tr.count(Kind::Malloc) + tr.count(Kind::Object) + tr.count(Kind::HeapBlock) > 600;
        if over && self.g.below(2) == 0 {
            let names = ["FREE", "OBJ_FREE", "HEAP_RESET", "HEAP_DESTROY", "ARENA_RESET", "FREE"];
            let n = names[self.g.below(names.len())];
            return self.row(n);
        }
        if (tr.count(Kind::Cache) >= 8 || tr.count(Kind::Heap) >= 8) && self.g.below(4) == 0 {
            return self.row(if tr.count(Kind::Cache) >= 8 { "CACHE_DESTROY" } else { "HEAP_DESTROY" });
        }
        let total = *self.sh.cumulative.last().unwrap_or(&1);
        let x = self.g.below(total as usize) as u32;
        self.sh.cumulative.iter().position(|&c| x < c).unwrap_or(0)
    }

    /// One generated call on one of the fds.
    pub(super) fn call(&mut self, i: u64) {
        let slot = self.slot();
        let p = self.prepare(&slot);
        let size = self.sh.specs[p.si].size;
        lock(&self.sh.recent[self.t]).push(i, p.row, p.cmd, p.arg_ptr, &self.d.arg[..size]);
        // SAFETY: the argument and its arrays were placed by `self.mem`:
        // what the kernel may write is our own memory, flush against guard
        // pages, that nothing else uses during the call (see mem.rs).
        let t0 = Instant::now();
        // SAFETY: as said above.
        let errno = unsafe { sys::ioctl(slot.fd.as_raw_fd(), p.cmd, p.argp.addr) };
        let took = t0.elapsed();
        self.finish(i, &slot, p, errno, took);
    }

    /// Generates a call for `slot` and puts it in memory: the command
    /// number, the struct and its user array, and what the result must be.
    pub(super) fn prepare(&mut self, slot: &Slot) -> Prepared {
        let sh = self.sh;
        let mut number = match self.g.below(1000) {
            0..=39 => Number::Unknown,
            40..=59 => Number::WrongSize,
            60..=69 => Number::WrongDir,
            _ => Number::Real,
        };
        // Draft the struct from the fd's state.
        let si = {
            let tr = lock(&slot.tracked);
            let si = self.pick_spec(&tr);
            self.foreign.clear();
            self.foreign.extend(lock(&sh.foreign).iter().filter(|&&(s, _)| s != slot.serial).map(|&(_, h)| h));
            self.dead.clear();
            self.dead.extend(lock(&sh.dead).iter().copied());
            let cx = gen::Ctx { env: &sh.env, tr: &tr, foreign: &self.foreign, dead: &self.dead, serial: sh.serial.fetch_add(1, Relaxed) };
            draft::draft(sh.specs[si].name, &mut self.g, &cx, &mut self.d);
            si
        };
        let spec = &sh.specs[si];
        let real = (spec.cmd)();
        let mut cmd = real;
        match number {
            Number::Real => {}
            Number::Unknown => {
                let magic = if self.g.below(2) == 0 {
                    uapi::RKALLOC_IOC_MAGIC
                } else {
                    let m = self.g.below(256) as u32;
                    if VFS_MAGICS.contains(&m) {
                        0xfe
                    } else {
                        m
                    }
                };
                let size = match self.g.below(3) {
                    0 => spec.size as u32,
                    1 => self.g.below(0x4000) as u32,
                    _ => [0, 8, 16, 32, 64][self.g.below(5)],
                };
                cmd = (self.g.below(4) as u32) << 30 | size << 16 | magic << 8 | self.g.below(256) as u32;
            }
            Number::WrongSize => {
                let s = spec.size as u32;
                let bad = [0, s - 8, s + 8, s + 1, s * 2, 0x3fff][self.g.below(6)];
                cmd = (real & !(0x3fff << 16)) | (bad << 16);
            }
            Number::WrongDir => cmd = (real & !(3 << 30)) | (self.g.below(3) as u32) << 30,
        }
        // A random number that happens to be this command's is this
        // command; one that happens to be another command's is made
        // unknown (nr 0xff), as the struct was drafted for this one.
        if number != Number::Real {
            match sh.specs.iter().position(|s| (s.cmd)() == cmd) {
                Some(k) if k == si => number = Number::Real,
                Some(_) => cmd |= 0xff,
                None => {}
            }
        }
        let row = match number {
            Number::Real => si,
            Number::Unknown => sh.specs.len(),
            Number::WrongSize => sh.specs.len() + 1,
            Number::WrongDir => sh.specs.len() + 2,
        };

        // Mutations of the struct itself.
        let mut notes: Vec<String> = self.d.notes.iter().map(|s| s.to_string()).collect();
        let arg_ptr = self.g.ptr();
        let size_field = match self.g.below(1000) {
            0..=49 => {
                let s = spec.size as u32;
                let v = [0, 4, s - 4, s + 4, u32::MAX, 1 << 31][self.g.below(6)];
                notes.push(format!("size field {v} (impossible)"));
                Some((v, true))
            }
            50..=59 => {
                let v = [spec.size as u32 - 8, spec.size as u32 + 8][self.g.below(2)];
                notes.push(format!("size field {v}"));
                Some((v, false))
            }
            _ => None,
        };
        let mut reserved_set = false;
        if !spec.reserved.is_empty() && self.g.below(100) < 4 {
            let off = spec.reserved[self.g.below(spec.reserved.len())];
            let v = self.g.u32() | 1;
            self.d.arg[off..off + 4].copy_from_slice(&v.to_le_bytes());
            reserved_set = true;
            notes.push(format!("reserved field at offset {off} = {v:#x}"));
        }
        self.d.arg[..4].copy_from_slice(&size_field.map_or(spec.size as u32, |(v, _)| v).to_le_bytes());

        // The user array, then the struct pointing to it.
        let mut array = None;
        let mut array_bad = false;
        if let Some((off, role, esz)) = spec.array {
            let out = matches!(role, Role::HandlesOut | Role::EntriesOut);
            let p = self.mem.place(Area::Array, self.d.array_ptr, &self.d.array, self.d.array_access, if out { esz } else { 0 }, out);
            self.d.arg[off..off + 8].copy_from_slice(&p.addr.to_le_bytes());
            let usable = if out { self.d.array_ptr.writable() } else { self.d.array_ptr.readable() };
            // Without access to its array the call cannot succeed. LIST and
            // ALLOCATORS write only min(max, count) entries: none for max
            // 0, and maybe few enough to stop short of the guard page of a
            // straddling array.
            let max = u32::from_le_bytes(self.d.arg[4..8].try_into().unwrap_or_default());
            let maybe = role == Role::EntriesOut && (max == 0 || self.d.array_ptr == Ptr::Straddle);
            array_bad = !usable && !maybe;
            if !usable {
                notes.push(format!("{:?} user array", self.d.array_ptr));
            }
            array = Some((p, role, esz));
        }
        let argp = self.mem.place(Area::Arg, arg_ptr, &self.d.arg[..spec.size], spec.size, 0, false);
        let out_of_range = draft::invalid(spec.name, &self.d.arg[..spec.size], &self.d.array, &sh.env);
        if let Some(why) = out_of_range {
            notes.push(why.to_string());
        }
        let expect = if number != Number::Real {
            Expect::Errno(libc::ENOTTY)
        } else if arg_ptr == Ptr::Straddle && size_field.is_some() {
            // The size field itself is readable: a kernel may refuse it
            // (EINVAL) before reading the rest (EFAULT), or accept a smaller
            // size of another ABI version that ends before the guard page.
            if size_field.is_some_and(|(_, impossible)| impossible) {
                Expect::Fail
            } else {
                Expect::Table
            }
        } else if !arg_ptr.readable() {
            Expect::Errno(libc::EFAULT)
        } else if size_field.is_some_and(|(_, impossible)| impossible) {
            Expect::Errno(libc::EINVAL)
        } else if arg_ptr == Ptr::ReadOnly
            || reserved_set
            || array_bad
            || out_of_range.is_some()
            || self.d.srcs.iter().any(|s| s.must_refuse())
        {
            Expect::Fail
        } else {
            Expect::Table
        };

        Prepared { si, number, cmd, row, expect, arg_ptr, notes, argp, array }
    }

    /// Judges a call's result, checks its outputs and records what it
    /// changed.
    pub(super) fn finish(&mut self, i: u64, slot: &Slot, p: Prepared, errno: i32, took: Duration) {
        let sh = self.sh;
        let Prepared { si, number, cmd, row, expect, arg_ptr, mut notes, argp, array } = p;
        let spec = &sh.specs[si];
        self.record(row, errno, took);
        let command = (number == Number::Real).then_some(spec.name);
        let mut why = judge(command, expect, errno).err();
        let out: Vec<u8> = match argp.window {
            Some(w) if errno == 0 && arg_ptr.writable() => self.mem.read(w)[..spec.size].to_vec(),
            _ => Vec::new(),
        };
        if why.is_none() && errno == 0 && number == Number::Real {
            why = self.check_outputs(spec, &out, array);
        }
        if let Some(why) = why {
            if self.d.srcs.iter().any(|s| s.must_refuse()) {
                notes.push(format!("handles from {:?}", self.d.srcs));
            }
            let mut arg = format!("{arg_ptr:?} {}", (spec.show)(&self.d.arg[..spec.size]));
            if !notes.is_empty() {
                arg += &format!(" [{}]", notes.join("; "));
            }
            sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: command.unwrap_or(BAD_NUMBERS[row.saturating_sub(sh.specs.len()).min(2)]).to_string(),
                number: format!("{cmd:#010x}"),
                arg,
                errno: errno_name(errno),
                why,
            });
        }
        if errno == 0 && number == Number::Real && !out.is_empty() {
            let arr: Vec<u8> = match array {
                Some((p, Role::HandlesOut, _)) => p.window.map(|w| self.mem.read(w).to_vec()).unwrap_or_default(),
                _ => self.d.array.clone(),
            };
            self.effects(slot, spec.name, &out, &arr);
        }
    }

    /// The checks of a successful call's outputs.
    pub(super) fn check_outputs(&self, spec: &Spec, out: &[u8], array: Option<(mem::Placed, Role, usize)>) -> Option<String> {
        let mut bad = verdict::leaks_in_struct(spec, out);
        if !bad.is_empty() {
            bad.insert(0, "kernel address in the output:".into());
        }
        if spec.name == "INFO" {
            let i: uapi::rkalloc_info = spec::from_bytes(out);
            if i.abi_version != uapi::RKALLOC_ABI_VERSION {
                bad.push(format!("abi_version {} (the header's is {})", i.abi_version, uapi::RKALLOC_ABI_VERSION));
            }
        }
        if let Some((p, role, esz)) = array {
            if let (Some(w), true) = (p.window, matches!(role, Role::HandlesOut | Role::EntriesOut)) {
                let written = match role {
                    Role::HandlesOut => spec::from_bytes::<uapi::rkalloc_batch>(out).count as usize,
                    _ if spec.name == "LIST" => {
                        let l: uapi::rkalloc_list = spec::from_bytes(out);
                        l.max.min(l.count) as usize
                    }
                    _ => {
                        let l: uapi::rkalloc_allocators = spec::from_bytes(out);
                        l.max.min(l.count) as usize
                    }
                };
                let window = self.mem.read(w);
                bad.extend(verdict::check_array(role, esz, spec::out_words(spec.name), window, written, mem::CANARY));
                if spec.name == "ALLOCATORS" {
                    for (k, e) in window.chunks_exact(esz).take(written).enumerate() {
                        let a: uapi::rkalloc_allocator = spec::from_bytes(e);
                        if a.id as usize != k {
                            bad.push(format!("entry {k} has id {}", a.id));
                        }
                    }
                }
            }
        }
        (!bad.is_empty()).then(|| bad.join("; "))
    }

    /// What a success changed in the fd's state.
    pub(super) fn effects(&self, slot: &Slot, name: &str, out: &[u8], arr: &[u8]) {
        let mut tr = lock(&slot.tracked);
        let mut made = Vec::new();
        let mut add = |tr: &mut Tracked, k: Kind, handle: u64, bytes: u64, parent: u64| {
            tr.add(k, Held { handle, bytes, parent });
            made.push(handle);
        };
        let handles = |b: &[u8], n: usize| -> Vec<u64> {
            b.chunks_exact(8).take(n).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).collect()
        };
        match name {
            "POOL_ALLOC" => {
                let a: uapi::rkalloc_pool_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::Pool, a.handle, self.sh.env.page_size << a.order.min(20), 0);
            }
            "FREE" => {
                tr.remove(spec::from_bytes::<uapi::rkalloc_free>(out).handle);
            }
            "CACHE_CREATE" => {
                let a: uapi::rkalloc_cache_create = spec::from_bytes(out);
                add(&mut tr, Kind::Cache, a.handle, u64::from(a.obj_size), 0);
            }
            "CACHE_DESTROY" => {
                tr.remove(spec::from_bytes::<uapi::rkalloc_handle_op>(out).handle);
            }
            "OBJ_ALLOC" => {
                let a: uapi::rkalloc_batch = spec::from_bytes(out);
                let size = tr.object_size(a.cache);
                for h in handles(arr, a.count as usize) {
                    add(&mut tr, Kind::Object, h, size, a.cache);
                }
            }
            "OBJ_FREE" => {
                let a: uapi::rkalloc_batch = spec::from_bytes(out);
                for h in handles(arr, a.count as usize) {
                    tr.remove(h);
                }
            }
            "MALLOC" => {
                let a: uapi::rkalloc_malloc = spec::from_bytes(out);
                add(&mut tr, Kind::Malloc, a.handle, a.bytes, 0);
            }
            "HEAP_CREATE" => {
                let a: uapi::rkalloc_heap_create = spec::from_bytes(out);
                add(&mut tr, Kind::Heap, a.handle, a.initial_bytes.max(64 << 10), 0);
            }
            "HEAP_ALLOC" => {
                let a: uapi::rkalloc_heap_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::HeapBlock, a.handle, a.bytes, a.heap);
            }
            "HEAP_RESET" | "HEAP_DESTROY" => {
                let h = spec::from_bytes::<uapi::rkalloc_handle_op>(out).handle;
                tr.remove_children(Kind::HeapBlock, Some(h));
                if name == "HEAP_DESTROY" {
                    tr.remove(h);
                }
            }
            "ARENA_ALLOC" => {
                let a: uapi::rkalloc_arena_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::Arena, a.handle, a.bytes, 0);
            }
            "ARENA_RESET" => tr.remove_children(Kind::Arena, None),
            _ => {}
        }
        drop(tr);
        if !made.is_empty() {
            let mut f = lock(&self.sh.foreign);
            for h in made.into_iter().take(8) {
                ring_push(&mut f, (slot.serial, h));
            }
        }
    }

    /// Closes an fd while another thread is (most likely) inside a slow
    /// command on it. The helper thread uses a dup of the fd; this thread
    /// retires the slot (so the dup may hold the file's last reference),
    /// then replaces the dup's number with the tombstone fd by dup2: the
    /// file is released when the helper's ioctl returns, and the number
    /// never becomes free, so no other open in the process can get it
    /// while the helper may still use it. If the helper had not started
    /// yet, its command runs on the tombstone fd instead, which must
    /// answer as documented too.
    pub(super) fn race(&mut self, i: u64) -> Result<()> {
        let slot = self.sh.retire(self.g.below(self.sh.slots.len()))?;
        // SAFETY: dup of an fd this Arc keeps open.
        let dup = unsafe { libc::dup(slot.fd.as_raw_fd()) };
        if dup < 0 {
            bail!("dup failed: {}", std::io::Error::last_os_error());
        }
        drop(slot);
        let which = self.g.below(5);
        let seed = self.g.u64();
        let delay = Duration::from_micros(self.g.below(400) as u64);
        let (env, tids, t) = (&self.sh.env, &self.sh.tids, self.t);
        let t0 = Instant::now();
        let (name, errno) = std::thread::scope(|s| {
            let h = s.spawn(move || {
                // SAFETY: gettid has no preconditions.
                lock(tids).push((unsafe { libc::gettid() }, t));
                slow_call(dup, which, seed, env)
            });
            std::thread::sleep(delay);
            // SAFETY: `dup` is our own number; dup2 atomically makes it
            // name the tombstone's file instead.
            unsafe { libc::dup2(self.sh.tombstone.as_raw_fd(), dup) };
            h.join().unwrap_or(("(helper panicked)", -1))
        });
        // SAFETY: our own number, not used by anyone any more.
        unsafe { libc::close(dup) };
        self.counts.races += 1;
        let row = self.row(name);
        // The race's whole time, the helper thread's start included.
        self.record(row, errno, t0.elapsed());
        if let Err(why) = judge(Some(name), Expect::Table, errno) {
            self.sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: name.into(),
                number: "(close race)".into(),
                arg: format!("well-formed {name} on an fd closed meanwhile"),
                errno: errno_name(errno),
                why,
            });
        }
        Ok(())
    }
}

/// A well-formed slow command on `fd` (for the close race): BENCH,
/// CONFORM, REPLAY, CHECK or POOL_SHRINK. Returns its name and errno.
pub(super) fn slow_call(fd: RawFd, which: usize, seed: u64, env: &Env) -> (&'static str, i32) {
    let pick = |want: fn(&gen::Alloc) -> bool| env.allocators.iter().position(want).unwrap_or(0) as u32;
    let r = match which {
        0 => {
            let allocator = pick(|a| a.flags & uapi::RKALLOC_ALLOCATOR_FREES_ALL == 0 && a.min <= 64 && a.max >= 64);
            let a = uapi::rkalloc_bench {
                allocator,
                pattern: uapi::RKALLOC_BENCH_BATCH,
                batch: 16,
                bytes: 64,
                ops: 256,
                samples: 4,
                ..Default::default()
            };
            ("BENCH", sys::call(fd, uapi::cmd::bench(), a).err())
        }
        1 => {
            let allocator = (seed % env.allocators.len().max(1) as u64) as u32;
            let a = uapi::rkalloc_conform { allocator, ops: 256, seed, max_live: 32, ..Default::default() };
            ("CONFORM", sys::call(fd, uapi::cmd::conform(), a).err())
        }
        2 => {
            let allocator = pick(|a| a.flags & uapi::RKALLOC_ALLOCATOR_FREES_ALL == 0 && a.min <= 1 && a.max >= 4096);
            let ops: Vec<uapi::rkalloc_trace_op> = (0..256u32)
                .map(|i| match i % 4 {
                    3 => uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_FREE, id: i - 3, size: 0 },
                    _ => uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_ALLOC, id: i, size: u64::from(i * 13 % 4096 + 1) },
                })
                .collect();
            let a =
                uapi::rkalloc_replay { allocator, ops: ops.as_ptr() as u64, count: ops.len() as u32, max_id: 256, ..Default::default() };
            // `ops` outlives the call; the kernel only reads it.
            ("REPLAY", sys::call(fd, uapi::cmd::replay(), a).err())
        }
        3 => ("CHECK", sys::call(fd, uapi::cmd::check(), uapi::rkalloc_check::default()).err()),
        _ => ("POOL_SHRINK", sys::call(fd, uapi::cmd::pool_shrink(), uapi::rkalloc_pool_shrink::default()).err()),
    };
    (r.0, r.1.unwrap_or(0))
}

