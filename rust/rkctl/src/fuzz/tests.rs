//! Host tests of the fuzzer: the errno table parser on the real header,
//! the command table against the header, the verdict, the output checks,
//! and the generator (deterministic by seed, covering what it claims).
use super::*;
use spec::{bytes_of, from_bytes};

const HEADER: &str = include_str!("../../../../include/uapi/rkalloc.h");

#[test]
fn the_real_headers_table_parses() {
    let rows = errtable::parse(HEADER).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(names, errtable::commands(HEADER), "one row per command, in the header's order");
    assert_eq!(rows.len(), 24);
    let row = |c: &str| rows.iter().find(|r| r.command == c).unwrap().errnos.join(" ");
    assert_eq!(row("INFO"), "EFAULT EINVAL ENOTTY");
    assert_eq!(row("POOL_ALLOC"), "EFAULT EINVAL ENOMEM ENOTTY");
    assert_eq!(row("CACHE_DESTROY"), "EBUSY EFAULT EINVAL ENOENT ENOTTY");
    assert_eq!(row("OBJ_ALLOC"), "E2BIG EFAULT EINVAL ENOENT ENOMEM ENOTTY");
    assert_eq!(row("REPLAY"), "E2BIG EFAULT EINVAL EINTR ENOMEM ENOTTY");
    assert_eq!(row("CONFORM"), "EFAULT EINVAL EINTR ENOMEM ENOTTY EUCLEAN");
    // Every command may fail on a bad argument pointer or size field.
    for r in &rows {
        for e in ["EFAULT", "EINVAL", "ENOTTY"] {
            assert!(r.errnos.iter().any(|x| x == e), "{} lacks {e}", r.command);
        }
    }
}

#[test]
fn the_built_in_table_is_the_headers() {
    // build.rs made ERRNO_TABLE from the same header at build time.
    let rows = errtable::parse(HEADER).unwrap();
    assert_eq!(verdict::ERRNO_TABLE.len(), rows.len());
    for (r, (c, e)) in rows.iter().zip(verdict::ERRNO_TABLE) {
        assert_eq!(&r.command, c);
        let names: Vec<&str> = e.iter().map(|(n, _)| *n).collect();
        assert_eq!(r.errnos, names);
    }
    assert_eq!(verdict::documented("FREE").unwrap().iter().find(|(n, _)| *n == "ENOENT").unwrap().1, libc::ENOENT);
    assert!(verdict::documented("NOPE").is_none());
}

#[test]
fn the_parser_refuses_a_broken_table() {
    let cmds = "#define RKALLOC_IOC_A _IOWR(M, 0, struct a)\n#define RKALLOC_IOC_B _IOWR(M, 1, struct b)\n#define RKALLOC_IOC_MAGIC 0xB7\n";
    let with = |t: &str| format!("{cmds}/*\n{t} */\n");
    let ok = errtable::parse(&with(" * errors: A EFAULT\n * errors: B EINVAL ENOTTY\n")).unwrap();
    assert_eq!(ok[1].errnos, ["EINVAL", "ENOTTY"]);
    assert_eq!(ok[1].line, 6);
    // Prose that mentions the word in quotes is not a row.
    assert!(errtable::parse(&with(" * read this table (one \"errors:\" line per\n * errors: A EFAULT\n * errors: B EINVAL\n")).is_ok());
    let err = |t: &str| errtable::parse(&with(t)).unwrap_err();
    assert!(err(" * errors: A EFAULT\n").contains("RKALLOC_IOC_B has no `errors:` row"));
    assert!(err(" * errors: A EFAULT\n * errors: B EINVAL\n * errors: C EIO\n").contains("RKALLOC_IOC_C is not defined"));
    assert!(err(" * errors: A EFAULT\n * errors: A EINVAL\n * errors: B EIO\n").contains("second row"));
    assert!(err(" * errors: A\n * errors: B EIO\n").contains("lists no errno"));
    assert!(err(" * errors: A efault\n * errors: B EIO\n").contains("not an errno name"));
    assert!(err(" * errors: A EIO EIO\n * errors: B EIO\n").contains("twice"));
    assert!(err(" * errors:\n").contains("without a command"));
    assert!(errtable::parse("no commands at all").is_err());
    // The generated Rust names libc's constants.
    assert!(errtable::to_rust(&ok).contains("(\"B\", &[(\"EINVAL\", libc::EINVAL), (\"ENOTTY\", libc::ENOTTY), ]),"));
}

#[test]
fn the_command_table_matches_the_header() {
    let specs = spec::specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    assert_eq!(names, errtable::commands(HEADER));
    for s in &specs {
        let cmd = (s.cmd)();
        assert_eq!((cmd >> 16) & 0x3fff, s.size as u32, "{}: the number encodes the struct's size", s.name);
        assert_eq!(cmd >> 30, 3, "{}: _IOWR", s.name);
        assert_eq!((cmd >> 8) & 0xff, uapi::RKALLOC_IOC_MAGIC, "{}", s.name);
        assert!(s.size <= spec::MAX_ARG && s.size % 8 == 0);
        assert!(s.weight > 0);
        for &(n, off, k) in s.outs {
            assert!(off + 8 * k <= s.size, "{}: {n}", s.name);
        }
    }
    let mut nrs: Vec<u32> = specs.iter().map(|s| (s.cmd)() & 0xff).collect();
    nrs.dedup();
    assert_eq!(nrs.len(), specs.len(), "distinct numbers");
}

#[test]
fn the_verdict_follows_the_table() {
    let ok = |c, e, x| judge(Some(c), e, x).is_ok();
    assert!(ok("POOL_ALLOC", Expect::Table, 0));
    assert!(ok("POOL_ALLOC", Expect::Table, libc::ENOMEM));
    // Undocumented for this command (ENOENT is FREE's, not POOL_ALLOC's).
    let e = judge(Some("POOL_ALLOC"), Expect::Table, libc::ENOENT).unwrap_err();
    assert!(e.contains("ENOENT, which the header does not list"), "{e}");
    assert!(!ok("INFO", Expect::Table, libc::ENOMEM));
    assert!(!ok("FREE", Expect::Table, libc::EIO));
    assert!(ok("CACHE_DESTROY", Expect::Table, libc::EBUSY));
    assert!(!ok("FREE", Expect::Table, libc::EBUSY));
    // Damage is never acceptable, documented or not.
    assert!(!ok("CHECK", Expect::Table, libc::EUCLEAN));
    assert!(!ok("HEAP_ALLOC", Expect::Table, libc::EUCLEAN));
    // Numbers the header does not define: ENOTTY and nothing else.
    assert!(judge(None, Expect::Errno(libc::ENOTTY), libc::ENOTTY).is_ok());
    assert!(judge(None, Expect::Table, 0).is_err());
    assert!(judge(None, Expect::Table, libc::EINVAL).is_err());
    // What the fuzzer knows.
    assert!(!ok("FREE", Expect::Fail, 0));
    assert!(ok("FREE", Expect::Fail, libc::EINVAL));
    assert!(!ok("FREE", Expect::Fail, libc::EIO), "a required failure still needs a documented errno");
    assert!(ok("INFO", Expect::Errno(libc::EFAULT), libc::EFAULT));
    assert!(!ok("INFO", Expect::Errno(libc::EFAULT), libc::EINVAL));
    assert!(!ok("INFO", Expect::Errno(libc::EINVAL), 0));
    assert!(ok("CHECK", Expect::Success, 0));
    assert!(!ok("CHECK", Expect::Success, libc::ENOMEM));
    assert!(judge(Some("NOPE"), Expect::Table, 0).is_err());
    assert_eq!(errno_name(libc::E2BIG), "E2BIG");
    assert_eq!(errno_name(0), "0");
    assert_eq!(errno_name(9999), "errno 9999");
}

fn spec_of(name: &str) -> Spec {
    spec::specs().into_iter().find(|s| s.name == name).unwrap()
}

#[test]
fn kernel_addresses_in_outputs_are_caught() {
    let v = spec_of("VERIFY");
    let mut p = uapi::rkalloc_pattern { handle: 0xffff_8880_0000_1000, bytes: 64, first_mismatch: u64::MAX, ..Default::default() };
    // An input echoed back is not an output; ~0 is VERIFY's "none".
    assert!(verdict::leaks_in_struct(&v, bytes_of(&p)).is_empty());
    p.bytes = 0xffff_8880_0123_4000;
    assert_eq!(verdict::leaks_in_struct(&v, bytes_of(&p)), ["bytes = 0xffff888001234000"]);
    p.bytes = 64;
    p.first_mismatch = 0xffff_ffff_8100_0000;
    assert_eq!(verdict::leaks_in_struct(&v, bytes_of(&p)).len(), 1);
    // u64::MAX is a sentinel only where the header says so.
    let a = spec_of("POOL_ALLOC");
    let x = uapi::rkalloc_pool_alloc { handle: u64::MAX, ..Default::default() };
    assert_eq!(verdict::leaks_in_struct(&a, bytes_of(&x)), ["handle = 0xffffffffffffffff"]);
    let s = spec_of("POOL_STATS");
    let mut st = uapi::rkalloc_pool_stats { total_pages: 16384, ..Default::default() };
    assert!(verdict::leaks_in_struct(&s, bytes_of(&st)).is_empty());
    st.merges[10] = 0xffff_c900_0000_0000;
    assert_eq!(verdict::leaks_in_struct(&s, bytes_of(&st)), ["merges[10] = 0xffffc90000000000"]);
    assert!(verdict::kernel_like(0xffff_8000_0000_0000) && !verdict::kernel_like(0x7fff_ffff_ffff_ffff));
}

#[test]
fn user_arrays_are_checked_for_leaks_and_overruns() {
    let c = mem::CANARY;
    let mut w = vec![c; 5 * 8];
    for (i, h) in [0x0100_0001_0001u64, 0x0100_0002_0001].iter().enumerate() {
        w[i * 8..i * 8 + 8].copy_from_slice(&h.to_le_bytes());
    }
    assert!(verdict::check_array(Role::HandlesOut, 8, &[0], &w, 2, c).is_empty());
    // A third handle written though the call reported two.
    let mut over = w.clone();
    over[16] = 0;
    assert!(verdict::check_array(Role::HandlesOut, 8, &[0], &over, 2, c)[0].contains("wrote past the 2 elements"));
    let mut dup = w.clone();
    dup.copy_within(0..8, 8);
    assert!(verdict::check_array(Role::HandlesOut, 8, &[0], &dup, 2, c)[0].contains("same handle twice"));
    let mut zero = w.clone();
    zero[..8].fill(0);
    assert!(verdict::check_array(Role::HandlesOut, 8, &[0], &zero, 2, c)[0].contains("handle of 0"));
    // A LIST entry with a pointer in the padding after its name's NUL.
    let mut leak = vec![0u8; 64 * 2];
    leak[32..36].copy_from_slice(b"abc\0");
    leak[40..48].copy_from_slice(&0xffff_8880_dead_0000u64.to_le_bytes());
    let v = verdict::check_array(Role::EntriesOut, 64, spec::out_words("LIST"), &leak, 1, 0);
    assert_eq!(v, ["element 0 at byte 40: 0xffff8880dead0000 looks like a kernel address"]);
    // An allocator entry: flags and RKALLOC_NO_POLICY side by side are two
    // u32s, not an address.
    let a = uapi::rkalloc_allocator {
        id: 0,
        class: 1,
        flags: 8,
        policy: uapi::RKALLOC_NO_POLICY,
        min_bytes: 1,
        max_bytes: 4 << 20,
        ..Default::default()
    };
    let esz = std::mem::size_of::<uapi::rkalloc_allocator>();
    let mut w = bytes_of(&a).to_vec();
    w.extend(vec![0u8; esz]);
    assert!(verdict::check_array(Role::EntriesOut, esz, spec::out_words("ALLOCATORS"), &w, 1, 0).is_empty());
    let bad = uapi::rkalloc_allocator { max_bytes: 0xffff_ffff_8100_0000, ..a };
    let mut w = bytes_of(&bad).to_vec();
    w.extend(vec![0u8; esz]);
    assert_eq!(verdict::check_array(Role::EntriesOut, esz, spec::out_words("ALLOCATORS"), &w, 1, 0).len(), 1);
}

/// A `Shared` whose fds are /dev/null: enough to generate calls on.
fn host_shared(seed: u64) -> Shared {
    let null = || -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
    let specs = spec::specs();
    let cumulative = specs
        .iter()
        .scan(0, |s, x| {
            *s += x.weight;
            Some(*s)
        })
        .collect();
    Shared {
        dev: "/dev/null".into(),
        env: Env::example(),
        specs,
        cumulative,
        slots: (0..3)
            .map(|i| Mutex::new(Arc::new(Slot { fd: null(), serial: 100 + i, tracked: Mutex::new(Tracked::default()) })))
            .collect(),
        foreign: Mutex::new(Vec::new()),
        dead: Mutex::new(vec![0x0777_0000_0001_0001]),
        serial: AtomicU64::new(1),
        tombstone: null(),
        failures: Mutex::new(Vec::new()),
        nr_failures: AtomicU64::new(0),
        seed,
        show: 0,
        recent: (0..2).map(|_| Mutex::new(Recent::default())).collect(),
        tids: Mutex::new(Vec::new()),
    }
}

/// What a kernel would hand back on success, in the fuzzer's model: new
/// handles numbered by `next`.
fn fake_success(name: &str, arg: &[u8], next: &mut u64) -> Option<(Vec<u8>, Vec<u8>)> {
    // What a kernel would refuse.
    let refused = match name {
        "POOL_ALLOC" => from_bytes::<uapi::rkalloc_pool_alloc>(arg).order > 10,
        "MALLOC" => !(1..=u64::from(uapi::RKALLOC_MAX_MALLOC)).contains(&from_bytes::<uapi::rkalloc_malloc>(arg).bytes),
        "HEAP_CREATE" => from_bytes::<uapi::rkalloc_heap_create>(arg).initial_bytes > 256 << 20,
        "HEAP_ALLOC" => !(1..=1 << 20).contains(&from_bytes::<uapi::rkalloc_heap_alloc>(arg).bytes),
        "ARENA_ALLOC" => !(1..=1 << 20).contains(&from_bytes::<uapi::rkalloc_arena_alloc>(arg).bytes),
        "OBJ_ALLOC" => !(1..=uapi::RKALLOC_MAX_BATCH).contains(&from_bytes::<uapi::rkalloc_batch>(arg).count),
        "CACHE_CREATE" => !(1..=8192).contains(&from_bytes::<uapi::rkalloc_cache_create>(arg).obj_size),
        _ => false,
    };
    if refused {
        return None;
    }
    let mut h = || {
        *next += 1;
        (7u64 << 40) | (*next << 16) | 1
    };
    let mut arr = Vec::new();
    let out = match name {
        "POOL_ALLOC" => bytes_of(&uapi::rkalloc_pool_alloc { handle: h(), ..from_bytes(arg) }).to_vec(),
        "MALLOC" => bytes_of(&uapi::rkalloc_malloc { handle: h(), ..from_bytes(arg) }).to_vec(),
        "CACHE_CREATE" => bytes_of(&uapi::rkalloc_cache_create { handle: h(), ..from_bytes(arg) }).to_vec(),
        "HEAP_CREATE" => bytes_of(&uapi::rkalloc_heap_create { handle: h(), ..from_bytes(arg) }).to_vec(),
        "HEAP_ALLOC" => bytes_of(&uapi::rkalloc_heap_alloc { handle: h(), ..from_bytes(arg) }).to_vec(),
        "ARENA_ALLOC" => bytes_of(&uapi::rkalloc_arena_alloc { handle: h(), ..from_bytes(arg) }).to_vec(),
        "OBJ_ALLOC" => {
            let b: uapi::rkalloc_batch = from_bytes(arg);
            for _ in 0..b.count.min(64) {
                arr.extend_from_slice(&h().to_le_bytes());
            }
            bytes_of(&uapi::rkalloc_batch { count: b.count.min(64), ..b }).to_vec()
        }
        _ => arg.to_vec(),
    };
    Some((out, arr))
}

/// Generates `n` calls of thread 0 of a run seeded `seed` against the
/// model kernel (allocations succeed when the fuzzer expects nothing in
/// particular); returns each call, pointers blanked (mappings move).
fn generate(seed: u64, n: usize) -> (Vec<String>, Shared) {
    let sh = host_shared(seed);
    let mut out = Vec::new();
    {
        let mut w = Worker::new(&sh, 0).unwrap();
        let mut next = 0;
        for _ in 0..n {
            let slot = w.slot();
            let p = w.prepare(&slot);
            let spec = &sh.specs[p.si];
            let mut arg = w.d.arg[..spec.size].to_vec();
            if let Some((off, _, _)) = spec.array {
                arg[off..off + 8].fill(0);
            }
            out.push(format!("{:#x} {} {:?} {:?} {:?} {:?} {:?}", p.cmd, spec.name, p.expect, p.arg_ptr, w.d.array_ptr, arg, w.d.array));
            if p.number == Number::Real && p.expect == Expect::Table && p.arg_ptr.writable() && w.g.below(4) != 0 {
                if let Some((o, a)) = fake_success(spec.name, &arg, &mut next) {
                    let a = if spec.name == "OBJ_ALLOC" { a } else { w.d.array.clone() };
                    w.effects(&slot, spec.name, &o, &a);
                }
            }
        }
    }
    (out, sh)
}

#[test]
fn a_seed_gives_the_same_calls() {
    let (a, _) = generate(42, 3000);
    let (b, _) = generate(42, 3000);
    assert_eq!(a, b);
    let (c, _) = generate(43, 3000);
    assert_ne!(a, c);
    // Threads of one run draw different calls.
    let mut g0 = Gen::new(42, 0);
    let mut g1 = Gen::new(42, 1);
    assert_ne!((0..8).map(|_| g0.u64()).collect::<Vec<_>>(), (0..8).map(|_| g1.u64()).collect::<Vec<_>>());
}

#[test]
fn the_generator_covers_what_it_claims() {
    let (calls, sh) = generate(7, 20_000);
    let has = |s: &str| calls.iter().any(|c| c.contains(s));
    for spec in &sh.specs {
        assert!(calls.iter().any(|c| c.split(' ').nth(1) == Some(spec.name)), "{} never drafted", spec.name);
    }
    for p in ["Valid", "Misaligned", "ReadOnly", "Straddle", "Null", "Low", "Unmapped", "Kernel(", "NonCanonical("] {
        assert!(has(&format!(" {p}")), "pointer {p} never used");
    }
    for e in ["Table", "Fail", "Errno(25)", "Errno(14)", "Errno(22)"] {
        assert!(has(&format!(" {e} ")), "expectation {e} never made");
    }
    // The model kernel let the fds fill up with handles of every kind,
    // and the budget kept them bounded.
    let tr = lock(&lock(&sh.slots[0]).tracked).all().count();
    assert!(tr > 10, "only {tr} live handles tracked");
    for s in &sh.slots {
        let t = lock(&lock(s).tracked).bytes;
        assert!(t <= 2 * sh.env.budget + (8 << 20), "{t} bytes tracked");
    }
    // Handles of other fds were drawn, and known to be refused.
    assert!(!lock(&sh.foreign).is_empty());
}

#[test]
fn expensive_commands_stay_cheap() {
    let env = Env::example();
    let tr = Tracked::default();
    let cx = gen::Ctx { env: &env, tr: &tr, foreign: &[], dead: &[], serial: 1 };
    let mut g = Gen::new(1, 0);
    let mut d = Draft::new();
    for _ in 0..5000 {
        draft::draft("BENCH", &mut g, &cx, &mut d);
        let b: uapi::rkalloc_bench = from_bytes(&d.arg);
        if (1..=1 << 24).contains(&b.ops) && (1..=1024).contains(&b.samples) {
            assert!(b.ops * u64::from(b.samples) <= 4096, "{b:?}");
        }
        if (1..=uapi::RKALLOC_MAX_BATCH).contains(&b.batch) && b.bytes <= 64 << 20 {
            assert!(u64::from(b.batch) * b.bytes <= 8 << 20, "{b:?}");
        }
        draft::draft("CONFORM", &mut g, &cx, &mut d);
        let c: uapi::rkalloc_conform = from_bytes(&d.arg);
        if c.ops <= 1 << 24 {
            assert!(c.ops <= 64, "{c:?}");
        }
        draft::draft("REPLAY", &mut g, &cx, &mut d);
        assert!(d.array.len() <= 18 * 16);
    }
}

#[test]
fn out_of_range_parameters_must_fail() {
    let env = Env::example();
    let inv = |name: &str, arg: &[u8]| draft::invalid(name, arg, &[], &env);
    assert_eq!(inv("POOL_ALLOC", bytes_of(&uapi::rkalloc_pool_alloc { order: 10, ..Default::default() })), None);
    assert!(inv("POOL_ALLOC", bytes_of(&uapi::rkalloc_pool_alloc { order: 11, ..Default::default() })).is_some());
    let mut c = uapi::rkalloc_cache_create { obj_size: 8192, align: 4096, flags: 7, ..Default::default() };
    c.name[0] = b'x' as _;
    assert_eq!(inv("CACHE_CREATE", bytes_of(&c)), None);
    for bad in [
        uapi::rkalloc_cache_create { obj_size: 8193, ..c },
        uapi::rkalloc_cache_create { align: 24, ..c },
        uapi::rkalloc_cache_create { flags: 8, ..c },
        uapi::rkalloc_cache_create { name: [b'a' as _; 32], ..c },
    ] {
        assert!(inv("CACHE_CREATE", bytes_of(&bad)).is_some(), "{bad:?}");
    }
    let b = |count| uapi::rkalloc_batch { count, ..Default::default() };
    assert!(inv("OBJ_FREE", bytes_of(&b(0))).is_some() && inv("OBJ_ALLOC", bytes_of(&b(4097))).is_some());
    assert_eq!(inv("OBJ_ALLOC", bytes_of(&b(4096))), None);
    let bench = uapi::rkalloc_bench { allocator: 1, pattern: 0, batch: 0, bytes: 64, ops: 1 << 24, samples: 1024, ..Default::default() };
    assert_eq!(inv("BENCH", bytes_of(&bench)), None, "PAIR ignores batch");
    assert!(inv("BENCH", bytes_of(&uapi::rkalloc_bench { pattern: 1, ..bench })).is_some());
    assert!(inv("BENCH", bytes_of(&uapi::rkalloc_bench { bytes: 8193, ..bench })).is_some());
    // The arena (FREES_ALL) has no per-object lifetimes.
    assert!(inv("BENCH", bytes_of(&uapi::rkalloc_bench { allocator: 4, pattern: 3, batch: 8, ..bench })).is_some());
    assert_eq!(inv("BENCH", bytes_of(&uapi::rkalloc_bench { allocator: 4, pattern: 1, batch: 8, ..bench })), None);
    let conf = uapi::rkalloc_conform { allocator: 3, ops: 10, max_live: 4, ..Default::default() };
    assert_eq!(inv("CONFORM", bytes_of(&conf)), None);
    assert!(inv("CONFORM", bytes_of(&uapi::rkalloc_conform { lo: 9, hi: 8, ..conf })).is_some());
    assert!(inv("CONFORM", bytes_of(&uapi::rkalloc_conform { hi: (1 << 20) + 1, ..conf })).is_some());
    // REPLAY: the trace itself is checked as the kernel does.
    let op = |op, id, size| uapi::rkalloc_trace_op { op, id, size };
    let (a, f) = (uapi::RKALLOC_TRACE_ALLOC, uapi::RKALLOC_TRACE_FREE);
    let r = |ops: &[uapi::rkalloc_trace_op], max_id, allocator| {
        let arr: Vec<u8> = ops.iter().flat_map(|o| bytes_of(o).to_vec()).collect();
        let s = uapi::rkalloc_replay { allocator, count: ops.len() as u32, max_id, ..Default::default() };
        draft::invalid("REPLAY", bytes_of(&s), &arr, &env)
    };
    assert_eq!(r(&[op(a, 0, 8), op(f, 0, 0), op(a, 0, 9)], 1, 2), None);
    assert_eq!(r(&[op(a, 0, 8), op(a, 0, 8)], 1, 2), Some("an ALLOC of a live id"));
    assert_eq!(r(&[op(f, 0, 0)], 1, 2), Some("a FREE of an id not live"));
    assert_eq!(r(&[op(a, 1, 8)], 1, 2), Some("an op's id at or above max_id"));
    assert_eq!(r(&[op(a, 0, 8), op(f, 0, 8)], 1, 2), Some("a FREE with a size"));
    assert_eq!(r(&[op(2, 0, 8)], 1, 2), Some("an op that is neither ALLOC nor FREE"));
    assert_eq!(r(&[op(a, 0, 9000)], 1, 1), Some("a size the allocator cannot serve"));
    assert_eq!(r(&[op(a, 0, 8)], 1, 4), Some("an allocator that frees all at once"));
    assert!(r(&[], 1, 2).is_some() && r(&[op(a, 0, 8)], 0, 2).is_some());
}

#[test]
fn the_engine_runs_threads_races_and_reopens_on_a_null_device() {
    // /dev/null answers every ioctl with ENOTTY, which the header lists
    // for every command: the run exercises the threads, the reopens, the
    // close races (dup, dup2 onto the tombstone, close) and the memory
    // placement with real syscalls, and only the calls whose answer was
    // certain (EFAULT, EINVAL, success) are failures.
    let sh = host_shared(9);
    let counts: Vec<Counts> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|t| {
                let sh = &sh;
                s.spawn(move || {
                    let mut w = Worker::new(sh, t).unwrap();
                    w.run(20_000).unwrap();
                    w.counts
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ioctls: u64 = counts.iter().map(|c| c.ioctls).sum();
    let races: u64 = counts.iter().map(|c| c.races).sum();
    let reopens: u64 = counts.iter().map(|c| c.reopens).sum();
    let checks: u64 = counts.iter().map(|c| c.checks).sum();
    assert_eq!(ioctls, 40_000 - reopens, "one ioctl per step but the reopens");
    assert!(races > 10 && reopens > 20 && checks > 15, "{races} races, {reopens} reopens, {checks} checks");
    let hist_total: u64 = counts.iter().flat_map(|c| c.hist.iter()).map(|h| h[libc::ENOTTY as usize]).sum();
    assert_eq!(hist_total, ioctls, "every answer was ENOTTY");
    let failures = sh.failures.lock().unwrap();
    assert!(!failures.is_empty());
    for f in failures.iter() {
        assert_eq!(f.errno, "ENOTTY");
        assert!(f.why.contains("expected EFAULT") || f.why.contains("expected EINVAL") || f.why.contains("expected success"), "{f:?}");
    }
}
