//! The edge's text rule, stated in the contract. The edge refuses NUL and the other C0
//! control characters except tab, line feed and carriage return, and DEL, in the path, the
//! query string and every string of a JSON body (400 `invalid_text`, see [`crate::edge`]).
//! A schema that let such a string through would promise what the server refuses, so every
//! free-text string a client sends (path and query parameters, request bodies and the
//! schemas they reference) gets [`TEXT_PATTERN`]. Strings that already say what they hold
//! (a format, an enum or a pattern of their own) are left as they are, except that request
//! fields named `email` get [`EMAIL_PATTERN`]. Unsigned integers (`uint32`, …, formats JSON
//! Schema tools do not know) get their type's range as `maximum`. Response schemas are not
//! touched: a contract's own text may hold a form feed.

use std::collections::BTreeSet;
use utoipa::Number;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{OpenApi, RefOr, Schema};

/// Any text without the characters [`crate::edge::has_forbidden_char`] refuses.
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$";

/// What `Email::parse` accepts, in printable ASCII: a local part, one `@`, and a domain
/// with a dot that neither starts nor ends it (it also refuses the reserved `.invalid`
/// domain, which the description says). Every request field named `email` is one.
pub const EMAIL_PATTERN: &str = r"^[!-?A-~]+@[!--/-?A-~][!-?A-~]*\.[!-?A-~]*[!--/-?A-~]$";

/// Applies the rule to every parameter and JSON request body, and to the component schemas
/// those bodies reach.
pub fn apply(api: &mut OpenApi) {
    let mut reached = BTreeSet::new();
    for item in api.paths.paths.values_mut() {
        for p in item.parameters.iter_mut().flatten() {
            if let RefOr::T(p) = p
                && let Some(s) = p.schema.as_mut()
            {
                restrict(s, &mut reached);
            }
        }
        for op in [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            for p in op.parameters.iter_mut().flatten() {
                if let RefOr::T(p) = p
                    && let Some(s) = p.schema.as_mut()
                {
                    restrict(s, &mut reached);
                }
            }
            if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                // JSON bodies only: an upload's raw bytes are the file, not text.
                for (_, content) in body.content.iter_mut().filter(|(t, _)| t.contains("json")) {
                    if let RefOr::T(content) = content
                        && let Some(s) = content.schema.as_mut()
                    {
                        restrict(s, &mut reached);
                    }
                }
            }
        }
    }
    // Components reached from request bodies, and those they reach in turn.
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let mut done = BTreeSet::new();
    while let Some(name) = reached.iter().find(|n| !done.contains(*n)).cloned() {
        done.insert(name.clone());
        if let Some(s) = components.schemas.get_mut(&name) {
            restrict(s, &mut reached);
        }
    }
}

/// The largest value of an unsigned integer format, which JSON Schema tools do not know:
/// stated as `maximum` so that neither side is surprised by the type's range.
fn unsigned_max(format: &Option<SchemaFormat>) -> Option<usize> {
    match format {
        Some(SchemaFormat::KnownFormat(KnownFormat::UInt8)) => Some(u8::MAX as usize),
        Some(SchemaFormat::KnownFormat(KnownFormat::UInt16)) => Some(u16::MAX as usize),
        Some(SchemaFormat::KnownFormat(KnownFormat::UInt32)) => Some(u32::MAX as usize),
        Some(SchemaFormat::KnownFormat(KnownFormat::UInt64)) => Some(u64::MAX as usize),
        _ => None,
    }
}

/// Request bodies that are not JSON (an upload's or an import's raw bytes, multipart) carry a
/// file: any bytes, judged by their content, so their schema constrains nothing.
pub fn raw_bodies(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in [item.put.as_mut(), item.post.as_mut(), item.patch.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                for (_, content) in body.content.iter_mut().filter(|(t, _)| !t.contains("json")) {
                    if let RefOr::T(content) = content {
                        content.schema = Some(RefOr::T(Schema::Object(
                            utoipa::openapi::schema::Object::with_type(SchemaType::AnyValue),
                        )));
                    }
                }
            }
        }
    }
}

fn is_string(t: &SchemaType) -> bool {
    match t {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(ts) => ts.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// Gives free-text strings in `schema` the pattern and records the components it refers to.
fn restrict(schema: &mut RefOr<Schema>, reached: &mut BTreeSet<String>) {
    let s = match schema {
        RefOr::Ref(r) => {
            if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                reached.insert(name.to_owned());
            }
            return;
        }
        RefOr::T(s) => s,
    };
    match s {
        Schema::Object(o) => {
            if is_string(&o.schema_type)
                && o.format.is_none()
                && o.enum_values.is_none()
                && o.pattern.is_none()
            {
                o.pattern = Some(TEXT_PATTERN.to_owned());
            }
            if let Some(max) = unsigned_max(&o.format)
                && o.maximum.is_none()
            {
                o.maximum = Some(Number::UInt(max));
            }
            for (name, p) in o.properties.iter_mut() {
                if name == "email"
                    && let RefOr::T(Schema::Object(e)) = p
                    && is_string(&e.schema_type)
                    && e.pattern.is_none()
                {
                    e.pattern = Some(EMAIL_PATTERN.to_owned());
                    e.max_length = Some(254);
                    e.description = Some(format!(
                        "{} An address: local part, `@`, a domain with a dot (not a `.invalid` one).",
                        e.description.as_deref().unwrap_or_default()
                    ));
                }
                restrict(p, reached);
            }
            if let Some(ap) = o.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(r) = ap
            {
                restrict(r, reached);
            }
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                restrict(items, reached);
            }
        }
        Schema::OneOf(x) => x.items.iter_mut().for_each(|i| restrict(i, reached)),
        Schema::AllOf(x) => x.items.iter_mut().for_each(|i| restrict(i, reached)),
        Schema::AnyOf(x) => x.items.iter_mut().for_each(|i| restrict(i, reached)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern and the edge agree on every ASCII character (and a few beyond).
    #[test]
    fn the_pattern_refuses_exactly_what_the_edge_refuses() {
        // The contract's pattern, read as the JSON Schema (ECMA-262) regex it is: a class of
        // `\uXXXX` ranges. Checked by decoding the ranges, not by a second regex engine.
        let class = TEXT_PATTERN
            .strip_prefix("^[^")
            .and_then(|s| s.strip_suffix("]*$"))
            .expect("one negated class");
        let mut refused = Vec::new();
        let mut rest = class;
        while !rest.is_empty() {
            let lo = u32::from_str_radix(&rest[2..6], 16).expect("hex");
            rest = &rest[6..];
            let hi = match rest.strip_prefix('-') {
                Some(r) => {
                    let hi = u32::from_str_radix(&r[2..6], 16).expect("hex");
                    rest = &r[6..];
                    hi
                }
                None => lo,
            };
            refused.push(lo..=hi);
        }
        for c in (0u32..0x250).filter_map(char::from_u32) {
            let by_pattern = refused.iter().any(|r| r.contains(&(c as u32)));
            assert_eq!(
                by_pattern,
                crate::edge::has_forbidden_char(&c.to_string()),
                "{:#x}",
                c as u32
            );
        }
    }
}
