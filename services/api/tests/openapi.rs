//! The checked-in OpenAPI document must match the code. After an
//! intended API change, regenerate it with
//! `EXPECTORATE=overwrite cargo nextest run -p cloud-api --test openapi`.

#[test]
fn openapi_spec_is_current() {
    let spec = cloud_api::openapi::openapi_json();
    expectorate::assert_contents("../../api-spec/openapi.json", &spec);
}

#[test]
fn every_operation_has_an_id_and_a_response() {
    let spec: serde_json::Value =
        serde_json::from_str(&cloud_api::openapi::openapi_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() > 30, "only {} paths documented", paths.len());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
        }
    }
}
