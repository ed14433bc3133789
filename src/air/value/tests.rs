use super::*;
use crate::air::types::NoSchemas;
use crate::codec::json::parse_json;
use crate::object::ObjectId;

#[test]
fn agentos_option_as_variant() {
    use crate::codec::json::parse_json;
    let ty = Type::from_json(&parse_json(r#"{"option": {"hash": {}}}"#).unwrap()).unwrap();
    let none = parse_json(r#"{"variant": {"tag": "None"}}"#).unwrap();
    assert_eq!(
        from_json(&none, &ty, &super::super::types::NoSchemas).unwrap(),
        Value::Null
    );
    let h = format!("b3:{}", "1".repeat(64));
    let some = parse_json(&format!(
        r#"{{"variant": {{"tag": "Some", "value": {{"hash": "{h}"}}}}}}"#
    ))
    .unwrap();
    assert_eq!(
        from_json(&some, &ty, &super::super::types::NoSchemas).unwrap(),
        Value::Text(h)
    );
    // An option of a variant keeps reading `variant` as the inner variant's tagged form.
    let ty = Type::from_json(
        &parse_json(r#"{"option": {"variant": {"None": {"unit": {}}, "X": {"nat": {}}}}}"#)
            .unwrap(),
    )
    .unwrap();
    let v = from_json(&none, &ty, &super::super::types::NoSchemas).unwrap();
    assert_ne!(v, Value::Null);
}

fn j(s: &str) -> Json {
    parse_json(s).unwrap()
}

fn t(s: &str) -> Type {
    Type::from_json(&j(s)).unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// Reads `json` as a value of type `ty` (JSON text) without schemas.
fn read(ty: &str, json: &str) -> Result<Value, ValueError> {
    from_json(&j(json), &t(ty), &NoSchemas)
}

fn ok(ty: &str, json: &str) -> Value {
    read(ty, json).unwrap_or_else(|e| panic!("{ty} {json}: {e}"))
}

fn err(ty: &str, json: &str, path: &str, needle: &str) {
    let e = read(ty, json).expect_err(json);
    assert_eq!(e.path, path, "{ty} {json}: {e}");
    assert!(e.message.contains(needle), "{ty} {json}: {e}");
}

fn text_map(entries: &[(&str, Value)]) -> Value {
    Value::Map(
        Map::from_entries(
            entries
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
        .unwrap(),
    )
}

/// Checks that every JSON text reads to the same value as the first, and that both
/// renderings read back to it.
fn same(ty: &str, forms: &[&str]) -> Value {
    let ty = t(ty);
    let first = from_json(&j(forms[0]), &ty, &NoSchemas).unwrap();
    for f in forms {
        let v = from_json(&j(f), &ty, &NoSchemas).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(cbor::encode(&v), cbor::encode(&first), "{f}");
    }
    let sugar = to_sugar(&first, &ty, &NoSchemas).unwrap();
    let tagged = to_tagged(&first, &ty, &NoSchemas).unwrap();
    assert_eq!(from_json(&sugar, &ty, &NoSchemas).unwrap(), first);
    assert_eq!(from_json(&tagged, &ty, &NoSchemas).unwrap(), first);
    first
}

const HASH: &str = "b3:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn both_lenses_give_the_same_bytes() {
    let mut schemas: BTreeMap<Name, Type> = BTreeMap::new();
    schemas.insert(
        name("sys/HttpRequestParams@1"),
        t(r#"{"record":{"method":{"text":{}},"url":{"text":{}},
                "headers":{"map":{"key":{"text":{}},"value":{"text":{}}}},
                "body_ref":{"option":{"hash":{}}}}}"#),
    );
    let ty = Type::Ref(name("sys/HttpRequestParams@1"));
    let sugar = j(&format!(
        r#"{{"url":"https://x.example/a","method":"GET","headers":{{"b":"2","a":"1"}},
                "body_ref":"{HASH}"}}"#
    ));
    let tagged = j(&format!(
        r#"{{"record":{{"method":{{"text":"GET"}},"url":{{"text":"https://x.example/a"}},
                "headers":{{"map":[{{"key":{{"text":"a"}},"value":{{"text":"1"}}}},
                                   {{"key":{{"text":"b"}},"value":{{"text":"2"}}}}]}},
                "body_ref":{{"hash":"{HASH}"}}}}}}"#
    ));
    // Mixed: tagged at the top, sugar inside, pairs for the text-keyed map.
    let mixed = j(&format!(
        r#"{{"record":{{"method":"GET","url":{{"text":"https://x.example/a"}},
                "headers":[["b","2"],["a",{{"text":"1"}}]],"body_ref":"{HASH}"}}}}"#
    ));
    let a = from_json(&sugar, &ty, &schemas).unwrap();
    let b = from_json(&tagged, &ty, &schemas).unwrap();
    let c = from_json(&mixed, &ty, &schemas).unwrap();
    assert_eq!(cbor::encode(&a), cbor::encode(&b));
    assert_eq!(cbor::encode(&a), cbor::encode(&c));
    assert_eq!(
        crate::codec::json::to_json(&a),
        format!(
            r#"{{"url":"https://x.example/a","method":"GET","headers":{{"a":"1","b":"2"}},"body_ref":"{HASH}"}}"#
        )
    );
    assert_eq!(to_tagged(&a, &ty, &schemas).unwrap(), {
        // Canonical member order: shorter keys first.
        j(&format!(
            r#"{{"record":{{"url":{{"text":"https://x.example/a"}},"method":{{"text":"GET"}},
                    "headers":{{"map":[{{"key":{{"text":"a"}},"value":{{"text":"1"}}}},
                                       {{"key":{{"text":"b"}},"value":{{"text":"2"}}}}]}},
                    "body_ref":{{"hash":"{HASH}"}}}}}}"#
        ))
    });
    // An omitted option field is none, and the canonical value holds it as null.
    let v = from_json(
        &j(r#"{"method":"GET","url":"u","headers":{}}"#),
        &ty,
        &schemas,
    )
    .unwrap();
    assert_eq!(
        crate::codec::json::to_json(&v),
        r#"{"url":"u","method":"GET","headers":{},"body_ref":null}"#
    );
}

#[test]
fn scalars_in_both_lenses() {
    same(r#"{"bool":{}}"#, &["true", r#"{"bool":true}"#]);
    same(r#"{"int":{}}"#, &["-3", r#""-3""#, r#"{"int":-3}"#]);
    same(
        r#"{"nat":{}}"#,
        &["18446744073709551615", r#"{"nat":18446744073709551615}"#],
    );
    same(r#"{"duration":{}}"#, &["-5", r#"{"duration_ns":-5}"#]);
    same(
        r#"{"time":{}}"#,
        &[
            "1000000000",
            r#""1000000000""#,
            r#""1970-01-01T00:00:01Z""#,
            r#""1970-01-01T01:00:01+01:00""#,
            r#"{"time_ns":1000000000}"#,
        ],
    );
    same(
        r#"{"dec128":{}}"#,
        &[r#""1.50""#, "1.5", r#"{"dec128":"15e-1"}"#],
    );
    same(r#"{"bytes":{}}"#, &[r#""AQI=""#, r#"{"bytes_b64":"AQI="}"#]);
    same(r#"{"text":{}}"#, &[r#""hi""#, r#"{"text":"hi"}"#]);
    same(
        r#"{"hash":{}}"#,
        &[&format!("\"{HASH}\""), &format!(r#"{{"hash":"{HASH}"}}"#)],
    );
    let u = same(
        r#"{"uuid":{}}"#,
        &[
            r#""123E4567-E89B-12D3-A456-426614174000""#,
            r#"{"uuid":"123e4567-e89b-12d3-a456-426614174000"}"#,
        ],
    );
    assert_eq!(u, Value::from("123e4567-e89b-12d3-a456-426614174000"));
    let unit = same(r#"{"unit":{}}"#, &["null", "{}", r#"{"null":{}}"#]);
    assert_eq!(unit, Value::Null);
    assert_eq!(ok(r#"{"bytes":{}}"#, r#""""#), Value::Bytes(vec![]));
}

#[test]
fn out_of_range_and_malformed_scalars_are_rejected() {
    err(
        r#"{"int":{}}"#,
        "9223372036854775808",
        "",
        "out of range for int",
    );
    err(
        r#"{"int":{}}"#,
        "-9223372036854775809",
        "",
        "out of range for int",
    );
    ok(r#"{"int":{}}"#, "-9223372036854775808");
    err(r#"{"nat":{}}"#, "-1", "", "out of range for nat");
    err(
        r#"{"nat":{}}"#,
        "18446744073709551616",
        "",
        "out of range for nat",
    );
    err(
        r#"{"nat":{}}"#,
        "1000000000000000000000000000000000000000000",
        "",
        "out of range",
    );
    err(r#"{"time":{}}"#, "-1", "", "out of range for time");
    err(
        r#"{"duration":{}}"#,
        "9223372036854775808",
        "",
        "out of range",
    );
    err(r#"{"int":{}}"#, "1.0", "", "not an integer");
    err(r#"{"int":{}}"#, "1e3", "", "not an integer");
    err(r#"{"int":{}}"#, r#""01""#, "", "expected an integer");
    err(
        r#"{"int":{}}"#,
        r#"{"int":"5"}"#,
        "/int",
        "takes an integer number",
    );
    err(
        r#"{"int":{}}"#,
        r#"{"nat":5}"#,
        "",
        "found a tagged `nat` literal",
    );
    err(r#"{"int":{}}"#, "true", "", "expected an integer");
    err(r#"{"bytes":{}}"#, r#""AQI""#, "", "invalid base64");
    err(r#"{"bytes":{}}"#, r#""AQN=""#, "", "invalid base64");
    err(r#"{"hash":{}}"#, r#""b3:00""#, "", "not a hash");
    err(
        r#"{"hash":{}}"#,
        &format!("\"{}\"", HASH.to_uppercase()),
        "",
        "not a hash",
    );
    err(
        r#"{"uuid":{}}"#,
        r#""123e4567e89b12d3a456426614174000""#,
        "",
        "not a uuid",
    );
    err(
        r#"{"dec128":{}}"#,
        r#""1e6145""#,
        "",
        "exponent out of range",
    );
    err(
        r#"{"dec128":{}}"#,
        r#"{"dec128":1.5}"#,
        "/dec128",
        "takes a string",
    );
    err(
        r#"{"unit":{}}"#,
        r#"{"null":null}"#,
        "/null",
        "empty object",
    );
    err(r#"{"unit":{}}"#, r#"{"x":1}"#, "", "expected null");
    err(
        r#"{"time":{}}"#,
        r#""1969-12-31T23:59:59Z""#,
        "",
        "before the Unix epoch",
    );
}

#[test]
fn dec128_canonical_text() {
    let table = [
        ("0", "0"),
        ("-0", "0"),
        ("+0.000", "0"),
        ("0e999999999999999999999", "0"),
        ("+1", "1"),
        ("1.50", "1.5"),
        ("-1.50", "-1.5"),
        ("100", "100"),
        ("1e2", "100"),
        ("1.0e-2", "0.01"),
        ("00012.3400", "12.34"),
        ("123.456", "123.456"),
        ("0.000001", "0.000001"),
        ("0.0000001", "1E-7"),
        ("-0.00000012", "-1.2E-7"),
        ("1e33", "1000000000000000000000000000000000"),
        ("1e34", "1E+34"),
        ("-12345e30", "-1.2345E+34"),
        ("1.5E+40", "1.5E+40"),
        ("1.0000000000000000000000000000000000000", "1"),
        (
            "12345678901234567890123456789012340",
            "1.234567890123456789012345678901234E+34",
        ),
        (
            "9999999999999999999999999999999999",
            "9999999999999999999999999999999999",
        ),
        (
            "9999999999999999999999999999999999e6111",
            "9.999999999999999999999999999999999E+6144",
        ),
        ("1e6144", "1E+6144"),
        ("1E-6176", "1E-6176"),
        ("0.1e-6175", "1E-6176"),
        (
            "1234567890123456789012345678901234e-6176",
            "1.234567890123456789012345678901234E-6143",
        ),
    ];
    for (input, want) in table {
        assert_eq!(canonical_dec128(input).unwrap(), want, "{input}");
        // The canonical text is a fixed point.
        assert_eq!(canonical_dec128(want).unwrap(), want, "{want}");
    }
    for bad in [
        "",
        "-",
        "+",
        ".5",
        "1.",
        "1e",
        "1e+",
        "--1",
        "1,5",
        " 1",
        "1 ",
        "0x10",
        "NaN",
        "Infinity",
        "-inf",
        "1e6145",
        "1e-6177",
        "10e6144",
        "12345678901234567890123456789012345",
        "1.2345678901234567890123456789012345",
        "1234567890123456789012345678901234e-6177",
    ] {
        assert!(canonical_dec128(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rfc3339_times() {
    let table: [(&str, u64); 9] = [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("1970-01-01t01:00:00+01:00", 0),
        ("1969-12-31T23:00:00-01:00", 0),
        ("1970-01-01T00:00:00.000000001z", 1),
        ("1970-01-01T00:00:00.1234567890Z", 123_456_789),
        ("2000-01-01T00:00:00-00:00", 946_684_800_000_000_000),
        ("2024-02-29T12:00:00+02:00", 1_709_200_800_000_000_000),
        ("2554-07-21T23:34:33.709551615Z", u64::MAX),
    ];
    for (s, ns) in table {
        assert_eq!(parse_rfc3339(s), Ok(ns), "{s}");
    }
    for bad in [
        "1969-12-31T23:59:59.999999999Z",
        "2554-07-21T23:34:33.709551616Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2016-12-31T23:59:60Z",
        "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567891Z",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00+01:00x",
        "24-01-01T00:00:00Z",
        "+2024-01-01T00:00:00Z",
        "",
    ] {
        assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_rfc3339("2016-12-31T23:59:60Z").unwrap_err().message,
        "\"2016-12-31T23:59:60Z\": leap seconds have no time in nanoseconds since the epoch"
    );
}

#[test]
fn sets_dedup_and_sort() {
    let v = same(
        r#"{"set":{"text":{}}}"#,
        &[
            r#"["b","a","a"]"#,
            r#"["a","b"]"#,
            r#"{"set":[{"text":"b"},"a"]}"#,
            r#"{"set":[{"text":"a"},{"text":"b"},{"text":"a"}]}"#,
        ],
    );
    assert_eq!(v, Value::Array(vec!["a".into(), "b".into()]));
    // By encoded bytes: 10 (0x0a) < 100 (0x1864) < -1 (0x20).
    let v = ok(r#"{"set":{"int":{}}}"#, "[-1,100,10,100]");
    assert_eq!(
        v,
        Value::Array(vec![10i64.into(), 100i64.into(), (-1i64).into()])
    );
    // Elements equal once canonical are one element.
    let v = ok(r#"{"set":{"dec128":{}}}"#, r#"["1.0","1","1e0"]"#);
    assert_eq!(v, Value::Array(vec!["1".into()]));
    let c = canonicalize(
        &Value::Array(vec!["b".into(), "a".into(), "b".into()]),
        &t(r#"{"set":{"text":{}}}"#),
        &NoSchemas,
    )
    .unwrap();
    assert_eq!(c, Value::Array(vec!["a".into(), "b".into()]));
}

#[test]
fn maps_with_non_text_keys() {
    let ty = r#"{"map":{"key":{"int":{}},"value":{"text":{}}}}"#;
    let v = same(
        ty,
        &[
            r#"[[2,"b"],[-1,"a"]]"#,
            r#"[[{"int":-1},"a"],[2,{"text":"b"}]]"#,
            r#"{"map":[{"key":{"int":2},"value":{"text":"b"}},{"key":-1,"value":"a"}]}"#,
        ],
    );
    let want = Map::from_entries(vec![
        (2i64.into(), "b".into()),
        ((-1i64).into(), "a".into()),
    ])
    .unwrap();
    assert_eq!(v, Value::Map(want));
    assert_eq!(
        to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
        j(r#"[[2,"b"],[-1,"a"]]"#)
    );
    assert_eq!(
        to_tagged(&v, &t(ty), &NoSchemas).unwrap(),
        j(r#"{"map":[{"key":{"int":2},"value":{"text":"b"}},
                         {"key":{"int":-1},"value":{"text":"a"}}]}"#)
    );
    err(ty, r#"{"1":"a"}"#, "", "array of [key, value] pairs");
    err(ty, r#"[[1,"a"],[1,"b"]]"#, "/1/0", "duplicate key 1");
    err(ty, r#"[[1,"a",2]]"#, "/0", "array of 3 elements");
    err(
        ty,
        r#"[["x","a"]]"#,
        "/0/0",
        "expected an integer (int), found the string \"x\"",
    );
    err(ty, r#"[[true,"a"]]"#, "/0/0", "expected an integer");
    err(ty, r#"{"map":[{"key":1}]}"#, "/map/0", "needs both");
    err(
        ty,
        r#"{"map":[{"key":1,"value":"a","x":0}]}"#,
        "/map/0/x",
        "unknown member",
    );
    // uuid keys may be an object; keys are canonicalized, and collisions are errors.
    let uty = r#"{"map":{"key":{"uuid":{}},"value":{"nat":{}}}}"#;
    let v = ok(uty, r#"{"AAAAAAAA-0000-0000-0000-000000000000":1}"#);
    assert_eq!(
        v,
        text_map(&[("aaaaaaaa-0000-0000-0000-000000000000", 1u64.into())])
    );
    err(
        uty,
        r#"{"AAAAAAAA-0000-0000-0000-000000000000":1,"aaaaaaaa-0000-0000-0000-000000000000":2}"#,
        "/aaaaaaaa-0000-0000-0000-000000000000",
        "duplicate key",
    );
    err(uty, r#"{"nope":1}"#, "/nope", "not a uuid");
    let mut m = Map::new();
    m.insert(2u64.into(), Value::Null);
    let c = canonicalize(
        &Value::Map(m),
        &t(r#"{"map":{"key":{"nat":{}},"value":{"option":{"int":{}}}}}"#),
        &NoSchemas,
    )
    .unwrap();
    assert_eq!(crate::codec::json::to_json(&c), r#"{"$map":[[2,null]]}"#);
}

#[test]
fn variants_and_unit_payloads() {
    let ty = r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}},"Maybe":{"option":{"nat":{}}}}}"#;
    let v = same(
        ty,
        &[
            r#""Ok""#,
            r#"{"Ok":null}"#,
            r#"{"Ok":{}}"#,
            r#"{"Ok":{"null":{}}}"#,
            r#"{"variant":{"tag":"Ok"}}"#,
            r#"{"variant":{"tag":"Ok","value":null}}"#,
        ],
    );
    assert_eq!(v, text_map(&[("Ok", Value::Null)]));
    assert_eq!(to_sugar(&v, &t(ty), &NoSchemas).unwrap(), j(r#""Ok""#));
    assert_eq!(
        to_tagged(&v, &t(ty), &NoSchemas).unwrap(),
        j(r#"{"variant":{"tag":"Ok"}}"#)
    );
    let e = same(
        ty,
        &[
            r#"{"Err":"boom"}"#,
            r#"{"variant":{"tag":"Err","value":"boom"}}"#,
        ],
    );
    assert_eq!(e, text_map(&[("Err", "boom".into())]));
    let m = same(ty, &[r#"{"Maybe":null}"#, r#"{"variant":{"tag":"Maybe"}}"#]);
    assert_eq!(m, text_map(&[("Maybe", Value::Null)]));
    assert_eq!(
        to_sugar(&m, &t(ty), &NoSchemas).unwrap(),
        j(r#"{"Maybe":null}"#)
    );
    err(ty, r#""Err""#, "", "carries a value");
    err(ty, r#""Nope""#, "", "unknown variant tag `Nope`");
    err(ty, r#"{"Nope":1}"#, "/Nope", "unknown variant tag");
    err(ty, r#"{"Ok":null,"Err":"x"}"#, "", "exactly one member");
    err(ty, r#"{"Err":5}"#, "/Err", "expected a string");
    err(
        ty,
        r#"{"variant":{"tag":"Err"}}"#,
        "/variant",
        "`value` is missing",
    );
    err(
        ty,
        r#"{"variant":{"tag":"Err","value":1}}"#,
        "/variant/value",
        "expected a string",
    );
    err(
        ty,
        r#"{"variant":{"tag":"Err","x":1}}"#,
        "/variant/x",
        "unknown member",
    );
    err(
        ty,
        r#"{"variant":{"tag":"X"}}"#,
        "/variant/tag",
        "unknown variant tag",
    );
    err(ty, r#"{"variant":{"value":1}}"#, "/variant", "needs `tag`");
    err(ty, "5", "", "expected a variant");
    // Data-model values: the bare tag of a unit variant is canonicalized.
    let c = canonicalize(&Value::from("Ok"), &t(ty), &NoSchemas).unwrap();
    assert_eq!(c, text_map(&[("Ok", Value::Null)]));
    assert!(canonicalize(&Value::from("Err"), &t(ty), &NoSchemas).is_err());
}

#[test]
fn sugar_that_looks_tagged_is_written_tagged() {
    // A record whose one field is named `record`.
    let ty = r#"{"record":{"record":{"int":{}}}}"#;
    let v = ok(ty, r#"{"record":{"record":5}}"#);
    assert_eq!(v, text_map(&[("record", 5i64.into())]));
    assert_eq!(
        to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
        j(r#"{"record":{"record":5}}"#)
    );
    err(
        ty,
        r#"{"record":5}"#,
        "/record",
        "takes an object of fields",
    );
    // A record with a field named like another tag keyword is plain sugar.
    let v = ok(r#"{"record":{"nat":{"nat":{}}}}"#, r#"{"nat":5}"#);
    assert_eq!(v, text_map(&[("nat", 5u64.into())]));
    // Under an option, a one-member object keyed `null` is none.
    let ty = r#"{"option":{"record":{"null":{"int":{}}}}}"#;
    assert_eq!(ok(ty, r#"{"null":{}}"#), Value::Null);
    let v = ok(ty, r#"{"record":{"null":1}}"#);
    assert_eq!(v, text_map(&[("null", 1i64.into())]));
    assert_eq!(
        to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
        j(r#"{"record":{"null":1}}"#)
    );
    // A text-keyed map whose one key is `map`.
    let ty = r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#;
    let v = ok(ty, r#"[["map",1]]"#);
    let s = to_sugar(&v, &t(ty), &NoSchemas).unwrap();
    assert_eq!(s, j(r#"{"map":[{"key":"map","value":1}]}"#));
    assert_eq!(from_json(&s, &t(ty), &NoSchemas).unwrap(), v);
    // A variant tag named `variant`.
    let ty = r#"{"variant":{"variant":{"int":{}},"unit_one":{"unit":{}}}}"#;
    let v = ok(ty, r#"{"variant":{"tag":"variant","value":3}}"#);
    assert_eq!(v, text_map(&[("variant", 3i64.into())]));
    let s = to_sugar(&v, &t(ty), &NoSchemas).unwrap();
    assert_eq!(s, j(r#"{"variant":{"tag":"variant","value":3}}"#));
    err(ty, r#"{"variant":3}"#, "/variant", "takes an object");
}

#[test]
fn records_are_strict_except_for_omitted_options() {
    let ty = r#"{"record":{"a":{"int":{}},"b":{"option":{"text":{}}},"c":{"unit":{}}}}"#;
    let v = ok(ty, r#"{"a":1,"c":null}"#);
    assert_eq!(
        v,
        text_map(&[("a", 1i64.into()), ("b", Value::Null), ("c", Value::Null)])
    );
    err(ty, r#"{"a":1}"#, "", "missing field `c`");
    err(ty, r#"{"c":null}"#, "", "missing field `a`");
    err(
        ty,
        r#"{"a":1,"c":null,"d":2}"#,
        "/d",
        "unknown field `d` (the record has `a`, `b`, `c`)",
    );
    err(ty, r#"{"a":"x","c":null}"#, "/a", "expected an integer");
    err(ty, r#"[1]"#, "", "expected an object (record)");
    let c = canonicalize(&text_map(&[("a", 1i64.into())]), &t(ty), &NoSchemas).unwrap_err();
    assert_eq!(c.message, "missing field `c`");
}

#[test]
fn error_paths_follow_the_input() {
    let ty = r#"{"record":{"a":{"list":{"record":{"b":{"set":{"nat":{}}}}}}}}"#;
    err(
        ty,
        r#"{"a":[{"b":[1]},{"b":[2,-3]}]}"#,
        "/a/1/b/1",
        "out of range for nat",
    );
    err(
        ty,
        r#"{"record":{"a":{"list":[{"b":[1]},{"record":{"b":{"set":[2,{"nat":-3}]}}}]}}}"#,
        "/record/a/list/1/record/b/set/1/nat",
        "out of range for nat",
    );
    let bad = text_map(&[(
        "a",
        Value::Array(vec![text_map(&[(
            "b",
            Value::Array(vec![1u64.into(), "x".into()]),
        )])]),
    )]);
    let e = canonicalize(&bad, &t(ty), &NoSchemas).unwrap_err();
    assert_eq!(e.path, "/a/0/b/1");
    assert_eq!(
        e.to_string(),
        "invalid value at `/a/0/b/1`: expected a non-negative integer (nat), found text"
    );
    // Pointer segments are escaped.
    err(
        r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#,
        r#"{"a/b~c":[]}"#,
        "/a~1b~0c",
        "expected an integer",
    );
}

#[test]
fn canonicalize_accepts_serde_forms() {
    let ty = t(
        r#"{"record":{"data":{"bytes":{}},"id":{"uuid":{}},"amount":{"dec128":{}},
            "nothing":{"unit":{}},"note":{"option":{"text":{}}}}}"#,
    );
    let from_serde = text_map(&[
        ("data", Value::Array(vec![1u64.into(), 255u64.into()])),
        ("id", "123E4567-E89B-12D3-A456-426614174000".into()),
        ("amount", "0012.50".into()),
        ("nothing", Value::Map(Map::new())),
    ]);
    let c = canonicalize(&from_serde, &ty, &NoSchemas).unwrap();
    assert_eq!(
        c,
        text_map(&[
            ("data", Value::Bytes(vec![1, 255])),
            ("id", "123e4567-e89b-12d3-a456-426614174000".into()),
            ("amount", "12.5".into()),
            ("nothing", Value::Null),
            ("note", Value::Null),
        ])
    );
    assert_eq!(canonicalize(&c, &ty, &NoSchemas).unwrap(), c);
    let bad = text_map(&[
        ("data", Value::Array(vec![256u64.into()])),
        ("id", "123e4567-e89b-12d3-a456-426614174000".into()),
        ("amount", "1".into()),
        ("nothing", Value::Null),
    ]);
    assert_eq!(
        canonicalize(&bad, &ty, &NoSchemas).unwrap_err().path,
        "/data/0"
    );
    let link = Value::Link(ObjectId::from_bytes([0; 32]));
    assert!(canonicalize(&link, &Type::Hash, &NoSchemas).is_err());
    assert!(canonicalize(&Value::from(-1i64), &Type::Time, &NoSchemas).is_err());
}

#[test]
fn recursive_and_unknown_schemas_are_errors_not_loops() {
    let mut s: BTreeMap<Name, Type> = BTreeMap::new();
    s.insert(name("a/Opt@1"), t(r#"{"option":{"ref":"a/Opt@1"}}"#));
    s.insert(name("a/Alias@1"), t(r#"{"ref":"a/Alias@1"}"#));
    s.insert(name("a/Deep@1"), t(r#"{"list":{"ref":"a/Deep@1"}}"#));
    let opt = Type::Ref(name("a/Opt@1"));
    let e = from_json(&j("5"), &opt, &s).unwrap_err();
    assert!(e.message.contains("refers to itself"), "{e}");
    assert!(from_json(&j("5"), &Type::Ref(name("a/Alias@1")), &s).is_err());
    assert!(canonicalize(&Value::from(5u64), &opt, &s).is_err());
    let e = from_json(&j("5"), &Type::Ref(name("a/Gone@1")), &s).unwrap_err();
    assert_eq!(e.message, "unknown schema a/Gone@1");
    // A self-referential list accepts nesting only up to the depth limit.
    let deep = Type::Ref(name("a/Deep@1"));
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let v = from_json(&j(&nest(MAX_DEPTH)), &deep, &s).unwrap();
    assert_eq!(cbor::decode(&cbor::encode(&v)).unwrap(), v);
    let e = from_json(&j(&nest(MAX_DEPTH + 1)), &deep, &s).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    // Deep data-model values are refused too, without overflowing the stack.
    let mut v = Value::Array(vec![]);
    for _ in 0..1000 {
        v = Value::Array(vec![v]);
    }
    assert!(canonicalize(&v, &deep, &s).is_err());
    let deep_json = j(&nest(500));
    assert!(from_json(&deep_json, &deep, &s).is_err());
}

mod props {
    use std::collections::HashSet;

    use super::*;
    use crate::air::types::MapKey;
    use proptest::prelude::*;
    use proptest::strategy::Union;

    type Schemas = BTreeMap<Name, Type>;

    /// Labels, including every tag keyword so that sugar collides with tagged literals.
    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "record", "variant", "map", "null", "nat", "text", "list", "tag", "value", "key",
                "Ok", "x",
            ])
            .prop_map(str::to_owned),
            "[a-z_][a-z0-9_-]{0,5}",
        ]
    }

    fn fields(min: usize) -> impl Fn(BoxedStrategy<Type>) -> BoxedStrategy<BTreeMap<String, Type>> {
        move |inner| {
            prop::collection::vec((label(), inner), min..4)
                .prop_map(|v| v.into_iter().collect())
                .boxed()
        }
    }

    fn arb_type() -> impl Strategy<Value = Type> {
        let leaf = prop_oneof![
            Just(Type::Bool),
            Just(Type::Int),
            Just(Type::Nat),
            Just(Type::Dec128),
            Just(Type::Bytes),
            Just(Type::Text),
            Just(Type::Time),
            Just(Type::Duration),
            Just(Type::Hash),
            Just(Type::Uuid),
            Just(Type::Unit),
        ];
        leaf.prop_recursive(5, 32, 4, |inner| {
            let inner = inner.boxed();
            let key = prop::sample::select(vec![
                MapKey::Int,
                MapKey::Nat,
                MapKey::Text,
                MapKey::Uuid,
                MapKey::Hash,
            ]);
            prop_oneof![
                fields(0)(inner.clone()).prop_map(Type::Record),
                fields(1)(inner.clone()).prop_map(Type::Variant),
                inner.clone().prop_map(|t| Type::List(Box::new(t))),
                inner.clone().prop_map(|t| Type::Set(Box::new(t))),
                inner.clone().prop_map(|t| Type::Option(Box::new(t))),
                (key, inner).prop_map(|(key, v)| Type::Map {
                    key,
                    value: Box::new(v)
                }),
            ]
        })
    }

    /// Moves composite subtrees into named schemas where `coins` say so, leaving references.
    fn extract(t: Type, coins: &mut impl Iterator<Item = bool>, s: &mut Schemas) -> Type {
        let t = match t {
            Type::Record(f) => Type::Record(
                f.into_iter()
                    .map(|(k, x)| (k, extract(x, coins, s)))
                    .collect(),
            ),
            Type::Variant(f) => Type::Variant(
                f.into_iter()
                    .map(|(k, x)| (k, extract(x, coins, s)))
                    .collect(),
            ),
            Type::List(x) => Type::List(Box::new(extract(*x, coins, s))),
            Type::Set(x) => Type::Set(Box::new(extract(*x, coins, s))),
            Type::Option(x) => Type::Option(Box::new(extract(*x, coins, s))),
            Type::Map { key, value } => Type::Map {
                key,
                value: Box::new(extract(*value, coins, s)),
            },
            other => other,
        };
        if coins.next().unwrap_or(false) {
            let n = Name::new(&format!("t/S{}@1", s.len())).expect("valid name");
            s.insert(n.clone(), t);
            Type::Ref(n)
        } else {
            t
        }
    }

    fn typed() -> impl Strategy<Value = (Type, Schemas)> {
        (arb_type(), prop::collection::vec(any::<bool>(), 0..40)).prop_map(|(t, coins)| {
            let mut s = Schemas::new();
            let mut coins = coins.into_iter();
            let t = extract(t, &mut coins, &mut s);
            (t, s)
        })
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A canonical value of type `t`.
    fn arb_value(t: &Type, s: &Schemas) -> BoxedStrategy<Value> {
        match t {
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::Int | Type::Duration => any::<i64>().prop_map(Value::from).boxed(),
            Type::Nat | Type::Time => any::<u64>().prop_map(Value::from).boxed(),
            Type::Dec128 => prop_oneof![
                (any::<bool>(), any::<u64>(), -60i32..60)
                    .prop_map(|(neg, m, e)| { format!("{}{m}E{e}", if neg { "-" } else { "" }) }),
                prop::sample::select(vec![
                    "9999999999999999999999999999999999e6111",
                    "1E-6176",
                    "-0",
                    "0.5",
                ])
                .prop_map(str::to_owned),
            ]
            .prop_map(|s| Value::Text(dec128(&s).expect("fits")))
            .boxed(),
            Type::Bytes => prop::collection::vec(any::<u8>(), 0..12)
                .prop_map(Value::Bytes)
                .boxed(),
            Type::Text => prop_oneof![label(), ".{0,6}"].prop_map(Value::Text).boxed(),
            Type::Hash => any::<[u8; 32]>()
                .prop_map(|b| Value::Text(format!("b3:{}", hex(&b))))
                .boxed(),
            Type::Uuid => any::<[u8; 16]>()
                .prop_map(|b| {
                    let h = hex(&b);
                    Value::Text(format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    ))
                })
                .boxed(),
            Type::Unit => Just(Value::Null).boxed(),
            Type::Record(fields) => fields
                .iter()
                .map(|(k, x)| {
                    let k = k.clone();
                    arb_value(x, s).prop_map(move |v| (Value::Text(k.clone()), v))
                })
                .collect::<Vec<_>>()
                .prop_map(|entries| Value::Map(Map::from_entries(entries).expect("distinct")))
                .boxed(),
            Type::Variant(tags) => Union::new(tags.iter().map(|(k, x)| {
                let k = k.clone();
                arb_value(x, s).prop_map(move |v| one_entry(&k, v))
            }))
            .boxed(),
            Type::List(x) => prop::collection::vec(arb_value(x, s), 0..4)
                .prop_map(Value::Array)
                .boxed(),
            Type::Set(x) => prop::collection::vec(arb_value(x, s), 0..4)
                .prop_map(sorted_set)
                .boxed(),
            Type::Map { key, value } => {
                prop::collection::vec((arb_value(key.type_ref(), s), arb_value(value, s)), 0..4)
                    .prop_map(|entries| {
                        let mut m = Map::new();
                        for (k, v) in entries {
                            if m.get(&k).is_none() {
                                m.insert(k, v);
                            }
                        }
                        Value::Map(m)
                    })
                    .boxed()
            }
            Type::Option(x) => prop_oneof![Just(Value::Null), arb_value(x, s)].boxed(),
            Type::Ref(n) => arb_value(&s[n], s),
        }
    }

    fn typed_value() -> impl Strategy<Value = (Type, Schemas, Value)> {
        typed().prop_flat_map(|(t, s)| {
            let v = arb_value(&t, &s);
            (Just(t), Just(s), v)
        })
    }

    fn arb_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            prop::sample::select(vec!["0", "-1", "7", "1.5", "1e3", "18446744073709551616"])
                .prop_map(|n| Json::Number(n.to_owned())),
            prop_oneof![
                label(),
                Just("AQI=".to_owned()),
                Just("1970-01-01T00:00:00Z".to_owned()),
                Just("123e4567-e89b-12d3-a456-426614174000".to_owned()),
            ]
            .prop_map(Json::String),
        ];
        leaf.prop_recursive(5, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((label(), inner), 0..3).prop_map(|m| {
                    let mut seen = HashSet::new();
                    Json::Object(
                        m.into_iter()
                            .filter(|(k, _)| seen.insert(k.clone()))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn lenses_round_trip((t, s, v) in typed_value()) {
            prop_assert_eq!(canonicalize(&v, &t, &s), Ok(v.clone()));
            let sugar = to_sugar(&v, &t, &s).expect("renders");
            prop_assert_eq!(from_json(&sugar, &t, &s), Ok(v.clone()), "sugar {:?}", sugar);
            let tagged = to_tagged(&v, &t, &s).expect("renders");
            prop_assert_eq!(from_json(&tagged, &t, &s), Ok(v.clone()), "tagged {:?}", tagged);
            let bytes = cbor::encode(&v);
            prop_assert_eq!(cbor::decode(&bytes), Ok(v));
        }

        #[test]
        fn types_round_trip((t, s) in typed()) {
            for ty in std::iter::once(&t).chain(s.values()) {
                prop_assert_eq!(Type::from_json(&ty.to_json()), Ok(ty.clone()));
                let bytes = cbor::encode(&ty.to_value());
                let back = cbor::decode(&bytes).expect("decodes");
                prop_assert_eq!(Type::from_value(&back), Ok(ty.clone()));
            }
            prop_assert!(crate::air::types::check_recursion(&s).is_empty());
        }

        #[test]
        fn arbitrary_json_never_panics((t, s) in typed(), j in arb_json()) {
            if let Ok(v) = from_json(&j, &t, &s) {
                // Whatever is accepted is canonical and renders back to itself.
                prop_assert_eq!(canonicalize(&v, &t, &s), Ok(v.clone()));
                let sugar = to_sugar(&v, &t, &s).expect("renders");
                prop_assert_eq!(from_json(&sugar, &t, &s), Ok(v));
            }
        }
    }
}
