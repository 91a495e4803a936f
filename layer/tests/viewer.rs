//! The local console used by the examples: documents render as trees,
//! malformed datagrams are errors, and nothing it is sent makes it panic.

#[path = "../examples/support/viewer.rs"]
mod viewer;

#[test]
fn documents_render_as_trees() {
    let datagram = br#"{"format":"json","version":1}
{"type":"subsegment","trace_id":"1-5759e988-bd862e3fe1be46a994272793","parent_id":"53995c3f42cd8ad8","name":"handler","id":"03b8e854a9838491","start_time":1795654119.157596,"end_time":1795654119.162747,"annotations":{"customer_id":42},"subsegments":[{"name":"DynamoDB","id":"b1cee369282416c2","start_time":1795654119.158,"end_time":1795654119.160,"namespace":"aws","error":true,"throttle":true,"http":{"response":{"status":400}},"aws":{"operation":"GetItem","table_name":"orders"},"cause":{"exceptions":[{"id":"a24c3513ab916f9e","message":"Rate exceeded","type":"ProvisionedThroughputExceededException","remote":true}]}}]}"#;
    let doc = viewer::parse(datagram).unwrap();
    let text = viewer::render(&doc);
    assert!(text.starts_with(
        "trace 1-5759e988-bd862e3fe1be46a994272793  subsegment under 53995c3f42cd8ad8"
    ));
    assert!(text.contains("└─ handler"));
    assert!(text.contains("#customer_id=42"));
    assert!(text.contains("DynamoDB [aws] GetItem"));
    assert!(text.contains("400 error throttle"));
    assert!(text.contains("table_name=orders"));
    assert!(text.contains("cause: ProvisionedThroughputExceededException: Rate exceeded"));
}

#[test]
fn malformed_datagrams_are_errors_not_crashes() {
    let header = b"{\"format\":\"json\",\"version\":1}\n";
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"no newline at all".to_vec(),
        b"{\"format\":\"json\",\"version\":2}\n{}".to_vec(),
        b"not json\n{}".to_vec(),
        [header.as_slice(), b"{\"name\":"].concat(),
        [header.as_slice(), b"[1,2,3]"].concat(),
        [header.as_slice(), &[0xff, 0xfe, 0x00]].concat(),
    ];
    for case in &cases {
        assert!(
            viewer::parse(case).is_err(),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
    // Valid JSON of the wrong shapes renders without panicking.
    cases = vec![
        [header.as_slice(), b"{}"].concat(),
        [header.as_slice(), b"{\"name\":1,\"start_time\":\"x\",\"end_time\":null,\"subsegments\":[{},3,\"s\"]}"].concat(),
        [header.as_slice(), b"{\"start_time\":10,\"end_time\":5,\"subsegments\":[{\"start_time\":1e300,\"end_time\":-1e300}]}"].concat(),
    ];
    for case in &cases {
        let doc = viewer::parse(case).unwrap();
        let _ = viewer::render(&doc);
    }
}
