//! What schemars emits but Kubernetes refuses, removed from the generated CRD schemas.
//!
//! - `null` among an optional enum's values: kubectl's client-side validation rejects it
//!   (`unknown object type "nil"`); `nullable: true` already says the field may be null.
//! - defaults under `status`: status is written by controllers, never defaulted, and API
//!   servers refuse some (an empty-string default inside an array item was refused as
//!   `"null"`).

use serde_json::Value;

/// Apply every fix-up to an `openAPIV3Schema` as JSON.
pub fn fix(schema: &mut Value) {
    drop_null_enum_values(schema);
    if let Some(status) = schema.pointer_mut("/properties/status") {
        drop_defaults(status);
    }
}

fn drop_null_enum_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|x| !x.is_null());
            }
            map.values_mut().for_each(drop_null_enum_values);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_enum_values),
        _ => {}
    }
}

/// Remove `default` keywords (not properties named `default`) below a schema.
fn drop_defaults(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    map.remove("default");
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(drop_defaults);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(s) = map.get_mut(key) {
            drop_defaults(s);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            list.iter_mut().for_each(drop_defaults);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_leaves_enums_and_defaults_leave_status_only() {
        let mut s = json!({"properties": {
            "spec": {"properties": {
                "mode": {"enum": ["A", null], "nullable": true, "default": "A"},
                "default": {"type": "boolean", "default": false}}},
            "status": {"properties": {
                "phase": {"enum": ["New", "Done", null], "default": "New"},
                "runs": {"items": {"properties": {"message": {"default": ""}}}}}}}});
        fix(&mut s);
        assert_eq!(
            s["properties"]["spec"]["properties"]["mode"]["enum"],
            json!(["A"])
        );
        assert_eq!(
            s["properties"]["spec"]["properties"]["mode"]["default"],
            "A"
        );
        assert_eq!(
            s["properties"]["spec"]["properties"]["default"]["default"],
            false
        );
        let st = &s["properties"]["status"]["properties"];
        assert_eq!(st["phase"], json!({"enum": ["New", "Done"]}));
        assert_eq!(st["runs"]["items"]["properties"]["message"], json!({}));
    }
}
