use super::*;
use crate::codec::cbor;

/// A bump allocator over one page, shared by the test modules.
const ALLOC: &str = r#"
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $p))
"#;

fn module(body: &str) -> Vec<u8> {
    let text = format!("(module (memory (export \"memory\") 1) {ALLOC} {body})");
    wat::parse_str(&text).expect("wat")
}

fn reducer(body: &str, limits: &Limits) -> ReducerModule {
    ReducerModule::compile(&module(body), limits).expect("compile")
}

const ECHO_A: &str = r#"(func (export "step") (param i32 i32) (result i32 i32)
    (local.get 0) (local.get 1))"#;

const ECHO_B: &str = r#"(func (export "step") (param $ret i32) (param $p i32) (param $n i32)
    (i32.store (local.get $ret) (local.get $p))
    (i32.store offset=4 (local.get $ret) (local.get $n)))"#;

#[test]
fn echo_multi_value() {
    let m = reducer(ECHO_A, &Limits::default());
    assert_eq!(m.shape(), Shape::MultiValue);
    let out = m.step(b"hello").expect("step");
    assert_eq!(out.bytes, b"hello");
    assert!(out.fuel_consumed > 0);
    assert_eq!(m.step(b"").expect("empty").bytes, b"");
}

#[test]
fn echo_ret_ptr() {
    let m = reducer(ECHO_B, &Limits::default());
    assert_eq!(m.shape(), Shape::RetPtr);
    assert_eq!(m.step(b"world").expect("step").bytes, b"world");
}

#[test]
fn pure_run() {
    let body = ECHO_A.replace("\"step\"", "\"run\"");
    let p = PureModule::compile(&module(&body), &Limits::default()).expect("compile");
    assert_eq!(p.run(b"abc").expect("run").bytes, b"abc");
    // A pure component is not a reducer.
    let err = ReducerModule::compile(&module(&body), &Limits::default()).err();
    assert_eq!(
        err,
        Some(ModuleError::Export {
            name: "step",
            reason: "missing".into()
        })
    );
}

#[test]
fn each_call_is_a_fresh_instance() {
    // Counts calls in a global and returns the count as one byte at address 0.
    let body = r#"(global $calls (mut i32) (i32.const 0))
      (func (export "step") (param i32 i32) (result i32 i32)
        (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
        (i32.store8 (i32.const 0) (i32.add (i32.load8_u (i32.const 0)) (global.get $calls)))
        (i32.const 0) (i32.const 1))"#;
    let m = reducer(body, &Limits::default());
    for _ in 0..3 {
        assert_eq!(m.step(b"x").expect("step").bytes, [1]);
    }
}

#[test]
fn fuel_is_deterministic() {
    let limits = Limits::default();
    let a = reducer(ECHO_B, &limits);
    let b = reducer(ECHO_B, &limits);
    let input = vec![7u8; 1000];
    let first = a.step(&input).expect("a1");
    assert_eq!(a.step(&input).expect("a2"), first);
    assert_eq!(b.step(&input).expect("b"), first);
    assert_eq!(a.clone().step(&input).expect("clone"), first);
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let body = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (loop $l (br $l)) (i32.const 0) (i32.const 0))"#;
    let limits = Limits {
        fuel: 100_000,
        ..Limits::default()
    };
    let m = reducer(body, &limits);
    assert_eq!(m.step(b""), Err(Fault::OutOfFuel));
    assert_eq!(m.step(b""), Err(Fault::OutOfFuel));
}

#[test]
fn memory_bomb_hits_the_limit() {
    let body = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        (i32.const 0) (i32.const 0))"#;
    let limits = Limits {
        max_memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let m = reducer(body, &limits);
    assert_eq!(m.step(b""), Err(Fault::MemoryLimit));
}

#[test]
fn oversized_initial_memory_hits_the_limit() {
    let wasm = wat::parse_str(format!(
        "(module (memory (export \"memory\") 100) {ALLOC} {ECHO_A})"
    ))
    .expect("wat");
    let limits = Limits {
        max_memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let m = ReducerModule::compile(&wasm, &limits).expect("compile");
    assert_eq!(m.step(b""), Err(Fault::MemoryLimit));
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let body = r#"(func $f (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1))))
      (func (export "step") (param i32 i32) (result i32 i32)
        (drop (call $f (i32.const 0))) (i32.const 0) (i32.const 0))"#;
    let m = reducer(body, &Limits::default());
    assert_eq!(m.step(b""), Err(Fault::StackOverflow));
    // A tighter depth limit faults the same way.
    let tight = Limits {
        max_call_depth: 10,
        ..Limits::default()
    };
    assert_eq!(reducer(body, &tight).step(b""), Err(Fault::StackOverflow));
}

#[test]
fn guest_trap_is_reported() {
    let body = r#"(func (export "step") (param i32 i32) (result i32 i32) unreachable)"#;
    let m = reducer(body, &Limits::default());
    let fault = m.step(b"").expect_err("trap");
    assert!(matches!(fault, Fault::Trap(_)), "{fault:?}");
    assert_eq!(m.step(b"").expect_err("trap"), fault);
}

#[test]
fn imports_are_rejected() {
    let wasm = wat::parse_str(format!(
        "(module (import \"env\" \"clock\" (func (result i64))) (memory (export \"memory\") 1) \
         {ALLOC} {ECHO_A})"
    ))
    .expect("wat");
    let err = ReducerModule::compile(&wasm, &Limits::default()).err();
    assert_eq!(
        err,
        Some(ModuleError::Import {
            module: "env".into(),
            name: "clock".into()
        })
    );
    assert!(err.expect("err").to_string().contains("env::clock"));
}

#[test]
fn exports_are_checked() {
    let no_alloc =
        wat::parse_str(format!("(module (memory (export \"memory\") 1) {ECHO_A})")).expect("wat");
    assert!(matches!(
        ReducerModule::compile(&no_alloc, &Limits::default()),
        Err(ModuleError::Export { name: "alloc", .. })
    ));
    let bad_step = module(r#"(func (export "step") (param i32) (result i32) (local.get 0))"#);
    assert!(matches!(
        ReducerModule::compile(&bad_step, &Limits::default()),
        Err(ModuleError::Export { name: "step", .. })
    ));
    assert!(matches!(
        ReducerModule::compile(b"not wasm", &Limits::default()),
        Err(ModuleError::Invalid(_))
    ));
}

#[test]
fn simd_is_rejected() {
    let body = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (drop (v128.const i64x2 0 0)) (local.get 0) (local.get 1))"#;
    assert!(matches!(
        ReducerModule::compile(&module(body), &Limits::default()),
        Err(ModuleError::Invalid(_))
    ));
}

#[test]
fn bad_output_regions_are_rejected() {
    let out_of_bounds = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (i32.const 65530) (i32.const 100))"#;
    let m = reducer(out_of_bounds, &Limits::default());
    assert_eq!(
        m.step(b""),
        Err(Fault::BadOutput(
            "output region [65530, 65630) is out of bounds of a memory of 65536 bytes".into()
        ))
    );
    let negative = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (i32.const -1) (i32.const 4))"#;
    assert!(matches!(
        reducer(negative, &Limits::default()).step(b""),
        Err(Fault::BadOutput(_))
    ));
    let oversized = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (i32.const 0) (i32.const 2000))"#;
    let small = Limits {
        max_output_bytes: 1000,
        ..Limits::default()
    };
    assert_eq!(
        reducer(oversized, &small).step(b""),
        Err(Fault::BadOutput(
            "output of 2000 bytes exceeds the limit of 1000".into()
        ))
    );
    // Shape B whose guest never writes the (zeroed) slot: an empty output at 0.
    let bad_slot = r#"(func (export "step") (param i32 i32 i32))"#;
    assert_eq!(
        reducer(bad_slot, &Limits::default())
            .step(b"")
            .expect("ok")
            .bytes,
        b""
    );
}

#[test]
fn bad_alloc_is_a_fault() {
    let wasm = wat::parse_str(format!(
        "(module (memory (export \"memory\") 1) \
         (func (export \"alloc\") (param i32) (result i32) (i32.const 65535)) {ECHO_A})"
    ))
    .expect("wat");
    let m = ReducerModule::compile(&wasm, &Limits::default()).expect("compile");
    assert_eq!(
        m.step(b"ab"),
        Err(Fault::BadAlloc(
            "input region [65535, 65537) is out of bounds of a memory of 65536 bytes".into()
        ))
    );
}

#[test]
fn nan_results_are_canonical() {
    // Writes 0/0 (f64), sqrt(-1) (f32) and the f32 promotion of an arbitrary-payload NaN.
    let body = r#"(func (export "step") (param i32 i32) (result i32 i32)
        (f64.store (i32.const 0) (f64.div (f64.const 0) (f64.const 0)))
        (f32.store (i32.const 8) (f32.sqrt (f32.const -1)))
        (f64.store (i32.const 12)
          (f64.promote_f32 (f32.reinterpret_i32 (i32.const 0xFFC01234))))
        (i32.const 0) (i32.const 20))"#;
    let m = reducer(body, &Limits::default());
    let out = m.step(b"").expect("step");
    assert_eq!(m.step(b"").expect("again"), out);
    let b = &out.bytes;
    let f64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
    let f32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
    assert_eq!(f64_at(0), 0x7FF8_0000_0000_0000);
    assert_eq!(f32_at(8), 0x7FC0_0000);
    assert_eq!(f64_at(12), 0x7FF8_0000_0000_0000);
}

#[test]
fn limits_encoding_round_trips() {
    let limits = Limits {
        fuel: 5,
        ..Limits::default()
    };
    let v = limits.to_cbor();
    let bytes = cbor::encode(&v);
    assert_eq!(cbor::decode(&bytes).expect("decode"), v);
    assert_eq!(Limits::from_cbor(&v), Ok(limits));
    assert!(Limits::from_cbor(&Value::Null).is_err());
    let Value::Map(mut m) = v else { panic!() };
    m.insert("fuel".into(), Value::from(-1i64));
    assert!(Limits::from_cbor(&Value::Map(m)).is_err());
}

#[test]
fn too_small_stack_limit_is_rejected() {
    let limits = Limits {
        max_stack_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        ReducerModule::compile(&module(ECHO_A), &limits),
        Err(ModuleError::Limits(_))
    ));
}

#[test]
fn limits_encoding_is_pinned() {
    let bytes = cbor::encode(&Limits::default().to_cbor());
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "a5646675656c1a05f5e1006e6d61785f63616c6c5f64657074681903e86f6d61785f737461636b5f\
         62797465731a000f4240706d61785f6d656d6f72795f62797465731a04000000706d61785f6f757470\
         75745f62797465731a01000000"
    );
}

#[test]
fn trap_messages_are_fixed() {
    let cases = [
        ("unreachable", "unreachable"),
        (
            "(drop (i32.div_u (i32.const 1) (i32.const 0)))",
            "integer division by zero",
        ),
        (
            "(drop (i32.load (i32.const 70000)))",
            "memory out of bounds",
        ),
    ];
    for (code, message) in cases {
        let body = format!(
            r#"(func (export "step") (param i32 i32) (result i32 i32)
                {code} (i32.const 0) (i32.const 0))"#
        );
        let m = reducer(&body, &Limits::default());
        assert_eq!(m.step(b""), Err(Fault::Trap(message.into())), "{code}");
    }
}

#[test]
fn value_stack_limit_overflows() {
    // Each frame holds many locals, so a small value stack runs out before the call depth.
    let locals = "(local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)";
    let body = format!(
        r#"(func $f (param i32) (result i32) {locals}
             (call $f (i32.add (local.get 0) (i32.const 1))))
           (func (export "step") (param i32 i32) (result i32 i32)
             (drop (call $f (i32.const 0))) (i32.const 0) (i32.const 0))"#
    );
    let limits = Limits {
        max_stack_bytes: 4_096,
        max_call_depth: 100_000,
        ..Limits::default()
    };
    assert_eq!(reducer(&body, &limits).step(b""), Err(Fault::StackOverflow));
}

/// A step that leaves traces everywhere a reused instance could leak them: globals of every
/// number type, memory pages that start as zeros and a page that starts with data (at 8192,
/// from a data segment), plus a table it only reads. It returns 16 bytes summarising what it
/// saw before writing, so any leftover from an earlier call changes the output.
const SCRIBBLER: &str = r#"
  (global $i (mut i32) (i32.const 5))
  (global $l (mut i64) (i64.const -7))
  (global $f (mut f64) (f64.const 1.5))
  (table 1 funcref)
  (elem (i32.const 0) $seven)
  (type $t (func (result i32)))
  (func $seven (result i32) (i32.const 7))
  (data (i32.const 8192) "pristine data page")
  (func (export "step") (param $p i32) (param $n i32) (result i32 i32)
    (local $b i32)
    (local.set $b (i32.load8_u (local.get $p)))
    ;; What this call found: globals, a zero page, the data page, the table.
    (i32.store (i32.const 4096) (global.get $i))
    (i64.store (i32.const 4100) (global.get $l))
    (i32.store8 (i32.const 4108) (i32.load8_u (i32.const 40000)))
    (i32.store8 (i32.const 4109) (i32.load8_u (i32.const 8195)))
    (i32.store8 (i32.const 4110) (call_indirect (type $t) (i32.const 0)))
    (i32.store8 (i32.const 4111) (i32.trunc_f64_s (global.get $f)))
    (i32.store (i32.const 4112) (i32.load (i32.const 60000)))
    ;; Now scribble, depending on the input.
    (global.set $i (i32.add (global.get $i) (local.get $b)))
    (global.set $l (i64.extend_i32_u (local.get $b)))
    (global.set $f (f64.convert_i32_u (local.get $b)))
    (memory.fill (i32.const 36000) (local.get $b) (i32.const 9000))
    (i32.store8 (i32.const 8195) (local.get $b))
    (i32.store (i32.const 60000) (i32.mul (local.get $b) (i32.const 1000003)))
    (i32.const 4096) (i32.const 20))
"#;

#[test]
fn reused_instances_behave_as_fresh_ones() {
    let wasm = wat::parse_str(format!(
        "(module (memory (export \"memory\") 1) {ALLOC} {SCRIBBLER})"
    ))
    .expect("wat");
    let reused = ReducerModule::compile(&wasm, &Limits::default()).expect("compile");
    assert!(
        reused.0.0.reset_globals.is_some(),
        "this module qualifies for reuse"
    );
    let mut first = None;
    for b in [3u8, 200, 0, 255, 17, 3] {
        let out = reused.step(&[b]).expect("step");
        // A module compiled just now runs in a brand-new instance.
        let fresh = ReducerModule::compile(&wasm, &Limits::default())
            .expect("compile")
            .step(&[b])
            .expect("fresh step");
        assert_eq!(out, fresh, "input {b}");
        assert_eq!(&out.bytes[..4], &5i32.to_le_bytes(), "global reset");
        assert_eq!(out.bytes[12], 0, "zero page reset");
        assert_eq!(out.bytes[13], b's', "data page reset");
        assert_eq!(&out.bytes[16..20], &[0; 4], "untouched page reset");
        // Every call sees the same instance state, so reports the same thing.
        assert_eq!(*first.get_or_insert_with(|| out.clone()), out);
    }
}

#[test]
fn modules_with_state_beyond_memory_and_globals_get_fresh_instances() {
    // A start function, and a step that writes its table: neither can be reset by copying
    // memory and globals back, so every call instantiates afresh, and still sees a clean state.
    let start = r#"(global $g (mut i32) (i32.const 0))
      (func $init (global.set $g (i32.add (global.get $g) (i32.const 40))))
      (start $init)
      (func (export "step") (param i32 i32) (result i32 i32)
        (i32.store8 (i32.const 0) (global.get $g))
        (global.set $g (i32.const 99))
        (i32.const 0) (i32.const 1))"#;
    let table = r#"(table 2 funcref)
      (func $f)
      (elem declare func $f)
      (func (export "step") (param i32 i32) (result i32 i32)
        (i32.store8 (i32.const 0) (ref.is_null (table.get (i32.const 1))))
        (table.set (i32.const 1) (ref.func $f))
        (i32.const 0) (i32.const 1))"#;
    for (body, expect) in [(start, 40u8), (table, 1)] {
        let m = reducer(body, &Limits::default());
        assert!(m.0.0.reset_globals.is_none());
        for _ in 0..3 {
            assert_eq!(m.step(b"").expect("step").bytes, [expect]);
        }
    }
}

#[test]
fn grown_or_trapped_instances_are_not_reused() {
    // Grows memory by a page per call and reports the size; traps on input "t" after
    // changing the global that `alloc` uses.
    let body = r#"(func (export "step") (param $p i32) (param $n i32) (result i32 i32)
        (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 116))
          (then (global.set $next (i32.const 60000)) unreachable))
        (drop (memory.grow (i32.const 1)))
        (i32.store8 (i32.const 0) (memory.size))
        (i32.store (i32.const 4) (local.get $p))
        (i32.const 0) (i32.const 8))"#;
    let m = reducer(body, &Limits::default());
    let clean = m.step(b"g").expect("step");
    assert_eq!(clean.bytes[0], 2);
    for input in [b"g", b"t", b"g", b"t", b"g"] {
        match m.step(input) {
            Ok(out) => assert_eq!(out, clean),
            Err(f) => assert_eq!(f, Fault::Trap("unreachable".into())),
        }
    }
}
