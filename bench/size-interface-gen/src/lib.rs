//! The interface floor: from the uniffi metadata of a built library, the Rust source of a crate
//! that exports the same uniffi interface (the same namespace, modules, names, argument, return
//! and error types, docstrings, hence the same checksums and metadata) with bodies that do no
//! work. Every argument goes to `std::hint::black_box`, and every result is a value the optimizer
//! cannot know (built from `black_box`ed values, with every variant of an enum and both arms of a
//! `Result` reachable), so every lifting and lowering path of the interface stays in the library.
//!
//! What the metadata can say but this generator does not handle (async calls, default values,
//! renamed items, explicit discriminants, uniffi trait exports, ...) stops it with an error naming
//! the item: the floor is the real interface or it is nothing.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::{bail, Result};
use uniffi_meta::{EnumMetadata, EnumShape, FieldMetadata, FnParamMetadata, Metadata, ObjectImpl, RecordMetadata, TraitKind, Type};

/// The generated crate: its Cargo package name and `lib.rs`.
pub struct Generated {
    /// The library's crate name (the generated crate's `[lib] name`): uniffi derives the symbol
    /// names and module paths from it.
    pub crate_name: String,
    pub lib_rs: String,
}

/// The Rust source of the interface floor for `metadata` (everything one library holds).
pub fn generate(metadata: &[Metadata]) -> Result<Generated> {
    let namespaces: Vec<_> = metadata.iter().filter_map(|m| if let Metadata::Namespace(n) = m { Some(n) } else { None }).collect();
    let [ns] = namespaces.as_slice() else { bail!("expected one uniffi namespace in the library, found {}", namespaces.len()) };
    let g = Gen { krate: ns.crate_name.clone() };
    // Items by module path (the crate's root is its crate name).
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    // Methods, constructors and trait methods, by (module, type).
    let mut impls: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut trait_methods: BTreeMap<String, Vec<&uniffi_meta::TraitMethodMetadata>> = BTreeMap::new();
    let mut objects = BTreeMap::new();
    let mut callback_interfaces = BTreeMap::new();
    let mut errors_from_callbacks = std::collections::BTreeSet::new();

    for m in metadata {
        if !m.module_path().starts_with(&g.krate) {
            bail!("metadata of another crate ({}) in the library: not supported", m.module_path());
        }
        match m {
            Metadata::Namespace(_) => {}
            Metadata::Record(r) => modules.entry(r.module_path.clone()).or_default().push_str(&g.record(r)?),
            Metadata::Enum(e) => modules.entry(e.module_path.clone()).or_default().push_str(&g.enumeration(e)?),
            Metadata::CustomType(c) => {
                g.no_rename(&c.name, &c.orig_name)?;
                let builtin = g.rust_type(&c.builtin)?;
                let floor = g.floor(&c.builtin)?;
                let name = &c.name;
                let mut s = String::new();
                doc(&mut s, &c.docstring);
                writeln!(s, "pub struct {name}(pub {builtin});")?;
                writeln!(s, "uniffi::custom_type!({name}, {builtin}, {{ lower: |v| v.0, try_lift: |v| Ok({name}(v)) }});")?;
                writeln!(s, "impl {name} {{ pub fn floor() -> Self {{ {name}({floor}) }} }}\n")?;
                modules.entry(c.module_path.clone()).or_default().push_str(&s);
            }
            Metadata::Object(o) => {
                g.no_rename(&o.name, &o.orig_name)?;
                objects.insert(o.name.clone(), o);
            }
            Metadata::CallbackInterface(c) => {
                callback_interfaces.insert(c.name.clone(), c);
            }
            Metadata::Func(f) => {
                g.no_rename(&f.name, &f.orig_name)?;
                g.sync(&f.name, f.is_async)?;
                let sig = g.signature(&f.name, None, &f.inputs, &f.return_type, &f.throws)?;
                let body = g.body(None, &f.inputs, &f.return_type, &f.throws)?;
                let mut s = String::new();
                doc(&mut s, &f.docstring);
                writeln!(s, "#[uniffi::export]\npub {sig} {{\n    {body}\n}}\n")?;
                modules.entry(f.module_path.clone()).or_default().push_str(&s);
            }
            Metadata::Constructor(c) => {
                g.no_rename(&c.name, &c.orig_name)?;
                g.sync(&c.name, c.is_async)?;
                let ret = Some(Type::Object { module_path: c.module_path.clone(), name: c.self_name.clone(), imp: ObjectImpl::Struct });
                let mut sig = g.signature(&c.name, None, &c.inputs, &ret, &c.throws)?;
                // An object's own constructor returns `Arc<Self>`.
                sig = sig.replace(&format!("std::sync::Arc<{}>", g.path(&c.module_path, &c.self_name)), "std::sync::Arc<Self>");
                let body = g.body(None, &c.inputs, &ret, &c.throws)?;
                let mut s = String::new();
                doc(&mut s, &c.docstring);
                writeln!(s, "    #[uniffi::constructor]\n    pub {sig} {{\n        {body}\n    }}")?;
                impls.entry((c.module_path.clone(), c.self_name.clone())).or_default().push(s);
            }
            Metadata::Method(me) => {
                g.no_rename(&me.name, &me.orig_name)?;
                g.sync(&me.name, me.is_async)?;
                let receiver = if me.takes_self_by_arc { "self: std::sync::Arc<Self>" } else { "&self" };
                let sig = g.signature(&me.name, Some(receiver), &me.inputs, &me.return_type, &me.throws)?;
                let body = g.body(Some("self"), &me.inputs, &me.return_type, &me.throws)?;
                let mut s = String::new();
                doc(&mut s, &me.docstring);
                writeln!(s, "    pub {sig} {{\n        {body}\n    }}")?;
                impls.entry((me.module_path.clone(), me.self_name.clone())).or_default().push(s);
            }
            Metadata::TraitMethod(t) => {
                g.no_rename(&t.name, &t.orig_name)?;
                g.sync(&t.name, t.is_async)?;
                if let Some(e) = &t.throws {
                    errors_from_callbacks.insert(g.rust_type(e)?);
                }
                trait_methods.entry(t.trait_name.clone()).or_default().push(t);
            }
            Metadata::UdlFile(_) | Metadata::UniffiTrait(_) | Metadata::ObjectTraitImpl(_) => {
                bail!("not supported by the interface-floor generator: {m:?}")
            }
        }
    }

    for o in objects.values() {
        let mut s = String::new();
        doc(&mut s, &o.docstring);
        let name = &o.name;
        match o.imp {
            ObjectImpl::Struct => {
                writeln!(s, "#[derive(uniffi::Object)]\npub struct {name};\n")?;
                if let Some(items) = impls.remove(&(o.module_path.clone(), name.clone())) {
                    writeln!(s, "#[uniffi::export]\nimpl {name} {{\n{}}}\n", items.join("\n"))?;
                }
            }
            ObjectImpl::Trait(kind) => {
                let attr = match kind {
                    TraitKind::RustOnly => "#[uniffi::export]",
                    TraitKind::Both => "#[uniffi::export(rust, foreign)]",
                    TraitKind::ForeignOnly => "#[uniffi::export(foreign)]",
                };
                let methods = trait_methods.remove(name).unwrap_or_default();
                s.push_str(&g.foreign_trait(attr, name, &methods)?);
            }
        }
        modules.entry(o.module_path.clone()).or_default().push_str(&s);
    }
    for c in callback_interfaces.values() {
        let mut s = String::new();
        doc(&mut s, &c.docstring);
        let methods = trait_methods.remove(&c.name).unwrap_or_default();
        s.push_str(&g.foreign_trait("#[uniffi::export(callback_interface)]", &c.name, &methods)?);
        modules.entry(c.module_path.clone()).or_default().push_str(&s);
    }
    if let Some(((module, name), _)) = impls.into_iter().next() {
        bail!("methods of {module}::{name}, which is no object of the library");
    }
    if let Some((name, _)) = trait_methods.into_iter().next() {
        bail!("trait methods of {name}, which is no trait of the library");
    }
    // A foreign method that throws needs the error to take uniffi's "unexpected callback error".
    for e in errors_from_callbacks {
        let variant = metadata
            .iter()
            .find_map(|m| match m {
                Metadata::Enum(en) if g.path(&en.module_path, &en.name) == e => Some(en),
                _ => None,
            })
            .and_then(|en| en.variants.first().map(|v| (en, v)));
        let Some((en, v)) = variant else { bail!("a foreign method throws {e}, which is no error enum with a variant") };
        let value = g.variant_value(&g.path(&en.module_path, &en.name), v.name.as_str(), &v.fields)?;
        writeln!(
            modules.entry(en.module_path.clone()).or_default(),
            "impl From<uniffi::UnexpectedUniFFICallbackError> for {} {{\n    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {{\n        std::hint::black_box(e);\n        {value}\n    }}\n}}\n",
            en.name
        )?;
    }

    let mut lib_rs = String::from(
        "// Generated by bench/size-interface-gen from the uniffi metadata of the built library: the same\n\
         // uniffi interface with bodies that do no work (scripts/bench-size.sh). Do not edit.\n\
         #![allow(unused, clippy::all, non_camel_case_types)]\n",
    );
    if ns.name == ns.crate_name {
        lib_rs.push_str("uniffi::setup_scaffolding!();\n\n");
    } else {
        writeln!(lib_rs, "uniffi::setup_scaffolding!({:?});\n", ns.name)?;
    }
    lib_rs.push_str(&nest(&g.krate, &modules));
    Ok(Generated { crate_name: g.krate, lib_rs })
}

/// The modules as nested inline `pub mod` blocks, the crate root's items first.
fn nest(krate: &str, modules: &BTreeMap<String, String>) -> String {
    fn emit(prefix: &str, modules: &BTreeMap<String, String>, out: &mut String) {
        if let Some(items) = modules.get(prefix) {
            out.push_str(items);
        }
        let children: std::collections::BTreeSet<&str> = modules
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).and_then(|rest| rest.strip_prefix("::")))
            .map(|rest| rest.split("::").next().unwrap_or(rest))
            .collect();
        for child in children {
            out.push_str(&format!("pub mod {child} {{\n"));
            emit(&format!("{prefix}::{child}"), modules, out);
            out.push_str(&format!("}} // mod {child}\n\n"));
        }
    }
    let mut out = String::new();
    emit(krate, modules, &mut out);
    out
}

fn doc(out: &mut String, docstring: &Option<String>) {
    if let Some(d) = docstring {
        // One attribute: uniffi trims each doc attribute and joins them with newlines, so the
        // whole (already trimmed) text as one attribute gives the same docstring.
        out.push_str(&format!("#[doc = {d:?}]\n"));
    }
}

struct Gen {
    krate: String,
}

impl Gen {
    fn no_rename(&self, name: &str, orig: &Option<String>) -> Result<()> {
        match orig {
            Some(o) => bail!("{name} is renamed from {o}: not supported by the interface-floor generator"),
            None => Ok(()),
        }
    }

    fn sync(&self, name: &str, is_async: bool) -> Result<()> {
        if is_async {
            bail!("{name} is async: not supported by the interface-floor generator");
        }
        Ok(())
    }

    /// The Rust path of a named type from its module path (`krate::a::b` -> `crate::a::b::Name`).
    fn path(&self, module_path: &str, name: &str) -> String {
        match module_path.strip_prefix(&self.krate) {
            Some(rest) => format!("crate{rest}::{name}"),
            None => format!("{module_path}::{name}"),
        }
    }

    /// The Rust type uniffi maps `ty` from.
    pub fn rust_type(&self, ty: &Type) -> Result<String> {
        Ok(match ty {
            Type::UInt8 => "u8".into(),
            Type::Int8 => "i8".into(),
            Type::UInt16 => "u16".into(),
            Type::Int16 => "i16".into(),
            Type::UInt32 => "u32".into(),
            Type::Int32 => "i32".into(),
            Type::UInt64 => "u64".into(),
            Type::Int64 => "i64".into(),
            Type::Float32 => "f32".into(),
            Type::Float64 => "f64".into(),
            Type::Boolean => "bool".into(),
            Type::String => "String".into(),
            Type::Bytes => "Vec<u8>".into(),
            Type::Timestamp => "std::time::SystemTime".into(),
            Type::Duration => "std::time::Duration".into(),
            Type::Object { module_path, name, imp: ObjectImpl::Struct } => format!("std::sync::Arc<{}>", self.path(module_path, name)),
            Type::Object { module_path, name, imp: ObjectImpl::Trait(_) } => {
                format!("std::sync::Arc<dyn {}>", self.path(module_path, name))
            }
            Type::Record { module_path, name } | Type::Enum { module_path, name } | Type::Custom { module_path, name, .. } => {
                self.path(module_path, name)
            }
            Type::CallbackInterface { module_path, name } => format!("Box<dyn {}>", self.path(module_path, name)),
            Type::Box { inner_type } => format!("Box<{}>", self.rust_type(inner_type)?),
            Type::Optional { inner_type } => format!("Option<{}>", self.rust_type(inner_type)?),
            Type::Sequence { inner_type } => format!("Vec<{}>", self.rust_type(inner_type)?),
            Type::Set { inner_type } => format!("std::collections::HashSet<{}>", self.rust_type(inner_type)?),
            Type::Map { key_type, value_type } => {
                format!("std::collections::HashMap<{}, {}>", self.rust_type(key_type)?, self.rust_type(value_type)?)
            }
        })
    }

    /// An expression of type `ty` whose value the optimizer cannot know.
    pub fn floor(&self, ty: &Type) -> Result<String> {
        let bb = |e: &str| format!("std::hint::black_box({e})");
        Ok(match ty {
            Type::UInt8 | Type::Int8 | Type::UInt16 | Type::Int16 | Type::UInt32 | Type::Int32 | Type::UInt64 | Type::Int64 => {
                bb(&format!("0{}", self.rust_type(ty)?))
            }
            Type::Float32 => bb("0f32"),
            Type::Float64 => bb("0f64"),
            Type::Boolean => bb("false"),
            Type::String => bb("String::new()"),
            Type::Bytes => bb("Vec::<u8>::new()"),
            Type::Timestamp => bb("std::time::SystemTime::UNIX_EPOCH"),
            Type::Duration => bb("std::time::Duration::ZERO"),
            Type::Object { module_path, name, imp: ObjectImpl::Struct } => {
                bb(&format!("std::sync::Arc::new({})", self.path(module_path, name)))
            }
            Type::Object { module_path, name, imp: ObjectImpl::Trait(_) } => {
                bb(&format!("std::sync::Arc::new({}Floor) as {}", self.path(module_path, name), self.rust_type(ty)?))
            }
            Type::CallbackInterface { module_path, name } => {
                bb(&format!("Box::new({}Floor) as {}", self.path(module_path, name), self.rust_type(ty)?))
            }
            Type::Record { module_path, name } | Type::Enum { module_path, name } | Type::Custom { module_path, name, .. } => {
                format!("{}::floor()", self.path(module_path, name))
            }
            Type::Box { inner_type } => format!("Box::new({})", self.floor(inner_type)?),
            Type::Optional { inner_type } => {
                format!("if std::hint::black_box(false) {{ Some({}) }} else {{ None }}", self.floor(inner_type)?)
            }
            Type::Sequence { inner_type } => bb(&format!("vec![{}]", self.floor(inner_type)?)),
            Type::Set { inner_type } => bb(&format!("std::collections::HashSet::from([{}])", self.floor(inner_type)?)),
            Type::Map { key_type, value_type } => {
                bb(&format!("std::collections::HashMap::from([({}, {})])", self.floor(key_type)?, self.floor(value_type)?))
            }
        })
    }

    fn param_type(&self, p: &FnParamMetadata) -> Result<String> {
        if p.default.is_some() || p.optional {
            bail!("parameter {} has a default value: not supported by the interface-floor generator", p.name);
        }
        let ty = self.rust_type(&p.ty)?;
        Ok(match (p.by_ref, &p.ty) {
            (false, _) => ty,
            (true, Type::String) => "&str".into(),
            (true, _) => format!("&{ty}"),
        })
    }

    fn return_type(&self, ret: &Option<Type>, throws: &Option<Type>) -> Result<String> {
        let ok = match ret {
            Some(t) => self.rust_type(t)?,
            None => "()".into(),
        };
        Ok(match throws {
            Some(e) => format!("Result<{ok}, {}>", self.rust_type(e)?),
            None => ok,
        })
    }

    /// `fn name(receiver, a: A, ...) -> R`
    fn signature(
        &self,
        name: &str,
        receiver: Option<&str>,
        inputs: &[FnParamMetadata],
        ret: &Option<Type>,
        throws: &Option<Type>,
    ) -> Result<String> {
        let mut params: Vec<String> = receiver.into_iter().map(String::from).collect();
        for p in inputs {
            params.push(format!("{}: {}", p.name, self.param_type(p)?));
        }
        let ret = self.return_type(ret, throws)?;
        Ok(format!("fn {name}({}) -> {ret}", params.join(", ")))
    }

    /// Every argument to `black_box`, then a result the optimizer cannot know; with an error
    /// type, `Ok` or `Err` on a `black_box`ed bool, so both lowerings stay.
    fn body(&self, receiver: Option<&str>, inputs: &[FnParamMetadata], ret: &Option<Type>, throws: &Option<Type>) -> Result<String> {
        let args: Vec<&str> = receiver.into_iter().chain(inputs.iter().map(|p| p.name.as_str())).collect();
        let mut s = String::new();
        if !args.is_empty() {
            write!(s, "std::hint::black_box(({},)); ", args.join(", "))?;
        }
        let ok = match ret {
            Some(t) => self.floor(t)?,
            None => "()".into(),
        };
        match throws {
            Some(e) => write!(s, "if std::hint::black_box(false) {{ Err({}) }} else {{ Ok({ok}) }}", self.floor(e)?)?,
            None => s.push_str(&ok),
        }
        Ok(s)
    }

    fn fields(&self, fields: &[FieldMetadata], indent: &str) -> Result<String> {
        let mut s = String::new();
        for f in fields {
            self.no_rename(&f.name, &f.orig_name)?;
            if f.default.is_some() {
                bail!("field {} has a default value: not supported by the interface-floor generator", f.name);
            }
            doc(&mut s, &f.docstring);
            writeln!(s, "{indent}pub {}: {},", f.name, self.rust_type(&f.ty)?)?;
        }
        Ok(s)
    }

    fn record(&self, r: &RecordMetadata) -> Result<String> {
        self.no_rename(&r.name, &r.orig_name)?;
        let mut s = String::new();
        doc(&mut s, &r.docstring);
        writeln!(s, "#[derive(uniffi::Record)]\npub struct {} {{\n{}}}", r.name, self.fields(&r.fields, "    ")?)?;
        let inits: Vec<String> = r.fields.iter().map(|f| Ok(format!("{}: {}", f.name, self.floor(&f.ty)?))).collect::<Result<_>>()?;
        writeln!(s, "impl {} {{\n    pub fn floor() -> Self {{\n        Self {{ {} }}\n    }}\n}}\n", r.name, inits.join(", "))?;
        Ok(s)
    }

    /// A variant as a value: unit, or with every field at its floor (fields named by position,
    /// "0", "1"..., are a tuple variant's).
    fn variant_value(&self, enum_path: &str, variant: &str, fields: &[FieldMetadata]) -> Result<String> {
        if fields.is_empty() {
            return Ok(format!("{enum_path}::{variant}"));
        }
        let values: Vec<String> = fields.iter().map(|f| self.floor(&f.ty)).collect::<Result<_>>()?;
        if fields.iter().all(|f| f.name.parse::<usize>().is_ok()) {
            Ok(format!("{enum_path}::{variant}({})", values.join(", ")))
        } else {
            let named: Vec<String> = fields.iter().zip(values).map(|(f, v)| format!("{}: {v}", f.name)).collect();
            Ok(format!("{enum_path}::{variant} {{ {} }}", named.join(", ")))
        }
    }

    fn enumeration(&self, e: &EnumMetadata) -> Result<String> {
        self.no_rename(&e.name, &e.orig_name)?;
        if e.discr_type.is_some() || e.variants.iter().any(|v| v.discr.is_some()) {
            bail!("enum {} has explicit discriminants: not supported by the interface-floor generator", e.name);
        }
        if e.variants.is_empty() {
            bail!("enum {} has no variants: no floor value", e.name);
        }
        let mut s = String::new();
        doc(&mut s, &e.docstring);
        match e.shape {
            EnumShape::Enum => s.push_str("#[derive(uniffi::Enum)]\n"),
            EnumShape::Error { flat: false } => s.push_str("#[derive(Debug, uniffi::Error)]\n"),
            EnumShape::Error { flat: true } => s.push_str("#[derive(Debug, uniffi::Error)]\n#[uniffi(flat_error)]\n"),
        }
        if e.non_exhaustive {
            s.push_str("#[non_exhaustive]\n");
        }
        writeln!(s, "pub enum {} {{", e.name)?;
        for v in &e.variants {
            self.no_rename(&v.name, &v.orig_name)?;
            doc(&mut s, &v.docstring);
            if v.fields.is_empty() {
                writeln!(s, "    {},", v.name)?;
            } else if v.fields.iter().all(|f| f.name.parse::<usize>().is_ok()) {
                let tys: Vec<String> = v.fields.iter().map(|f| self.rust_type(&f.ty)).collect::<Result<_>>()?;
                writeln!(s, "    {}({}),", v.name, tys.join(", "))?;
            } else {
                let fields = self.fields(&v.fields, "        ")?.replace("pub ", "");
                writeln!(s, "    {} {{\n{fields}    }},", v.name)?;
            }
        }
        s.push_str("}\n");
        let arms: Vec<String> = e
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pat = if i + 1 == e.variants.len() { "_".to_string() } else { i.to_string() };
                Ok(format!("            {pat} => {},", self.variant_value("Self", &v.name, &v.fields)?))
            })
            .collect::<Result<_>>()?;
        writeln!(
            s,
            "impl {} {{\n    pub fn floor() -> Self {{\n        match std::hint::black_box(0usize) {{\n{}\n        }}\n    }}\n}}",
            e.name,
            arms.join("\n")
        )?;
        if e.shape.is_error() {
            // A flat error crosses as its Display text; the floor's text is a black_box'ed "".
            writeln!(
                s,
                "impl std::fmt::Display for {0} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(std::hint::black_box(\"\"))\n    }}\n}}\nimpl std::error::Error for {0} {{}}",
                e.name
            )?;
        }
        s.push('\n');
        Ok(s)
    }

    /// A trait implemented in Kotlin or Swift (or Rust, for `rust` kinds), and a Rust
    /// implementation (`NameFloor`) that a floor value of `Arc<dyn Name>` can use (linked only if
    /// some result needs it).
    fn foreign_trait(&self, attr: &str, name: &str, methods: &[&uniffi_meta::TraitMethodMetadata]) -> Result<String> {
        let mut methods = methods.to_vec();
        methods.sort_by_key(|m| m.index);
        for (i, m) in methods.iter().enumerate() {
            if m.index as usize != i {
                bail!("trait {name}: method indices are not 0..{}", methods.len());
            }
        }
        let mut decls = String::new();
        let mut defs = String::new();
        for m in &methods {
            let receiver = if m.takes_self_by_arc { "self: std::sync::Arc<Self>" } else { "&self" };
            let sig = self.signature(&m.name, Some(receiver), &m.inputs, &m.return_type, &m.throws)?;
            doc(&mut decls, &m.docstring);
            writeln!(decls, "    {sig};")?;
            writeln!(defs, "    {sig} {{\n        {}\n    }}", self.body(Some("self"), &m.inputs, &m.return_type, &m.throws)?)?;
        }
        Ok(format!(
            "{attr}\npub trait {name}: Send + Sync {{\n{decls}}}\npub struct {name}Floor;\nimpl {name} for {name}Floor {{\n{defs}}}\n\n"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniffi_meta::{FnMetadata, NamespaceMetadata, VariantMetadata};

    fn gen() -> Gen {
        Gen { krate: "kit".into() }
    }

    fn rec(name: &str) -> Type {
        Type::Record { module_path: "kit::types".into(), name: name.into() }
    }

    #[test]
    fn types_map_to_the_rust_types_uniffi_lifts() {
        let g = gen();
        let opt_vec = Type::Optional { inner_type: Box::new(Type::Sequence { inner_type: Box::new(rec("Receipt")) }) };
        assert_eq!(g.rust_type(&opt_vec).unwrap(), "Option<Vec<crate::types::Receipt>>");
        let obj = Type::Object { module_path: "kit".into(), name: "Kit".into(), imp: ObjectImpl::Struct };
        assert_eq!(g.rust_type(&obj).unwrap(), "std::sync::Arc<crate::Kit>");
        let foreign = Type::Object { module_path: "kit::log".into(), name: "Sink".into(), imp: ObjectImpl::Trait(TraitKind::ForeignOnly) };
        assert_eq!(g.rust_type(&foreign).unwrap(), "std::sync::Arc<dyn crate::log::Sink>");
        let map = Type::Map { key_type: Box::new(Type::String), value_type: Box::new(Type::Bytes) };
        assert_eq!(g.rust_type(&map).unwrap(), "std::collections::HashMap<String, Vec<u8>>");
        let custom = Type::Custom { module_path: "kit::types".into(), name: "Timestamp".into(), builtin: Box::new(Type::Int64) };
        assert_eq!(g.rust_type(&custom).unwrap(), "crate::types::Timestamp");
    }

    #[test]
    fn floors_hide_every_value_from_the_optimizer() {
        let g = gen();
        assert_eq!(g.floor(&Type::UInt32).unwrap(), "std::hint::black_box(0u32)");
        assert_eq!(
            g.floor(&Type::Sequence { inner_type: Box::new(rec("Receipt")) }).unwrap(),
            "std::hint::black_box(vec![crate::types::Receipt::floor()])"
        );
        assert_eq!(
            g.floor(&Type::Optional { inner_type: Box::new(Type::String) }).unwrap(),
            "if std::hint::black_box(false) { Some(std::hint::black_box(String::new())) } else { None }"
        );
    }

    fn error_enum() -> Metadata {
        let variant = |name: &str| VariantMetadata { name: name.into(), orig_name: None, discr: None, fields: vec![], docstring: None };
        Metadata::Enum(EnumMetadata {
            module_path: "kit::error".into(),
            name: "KitError".into(),
            orig_name: None,
            shape: EnumShape::Error { flat: true },
            remote: false,
            variants: vec![variant("Bad"), variant("Worse")],
            discr_type: None,
            non_exhaustive: false,
            docstring: None,
        })
    }

    #[test]
    fn a_throwing_function_blackboxes_its_arguments_and_can_return_both_arms() {
        let err = Type::Enum { module_path: "kit::error".into(), name: "KitError".into() };
        let f = Metadata::Func(FnMetadata {
            module_path: "kit".into(),
            name: "version_of".into(),
            orig_name: None,
            is_async: false,
            inputs: vec![FnParamMetadata::simple("path", Type::String), FnParamMetadata::simple("n", Type::UInt8)],
            return_type: Some(Type::String),
            throws: Some(err),
            checksum: Some(1),
            docstring: Some("The version.\nSecond line \"quoted\".".into()),
        });
        let ns = Metadata::Namespace(NamespaceMetadata { crate_name: "kit".into(), name: "kit".into() });
        let out = generate(&[ns, f, error_enum()]).unwrap();
        assert_eq!(out.crate_name, "kit");
        let lib = out.lib_rs;
        assert!(lib.contains("uniffi::setup_scaffolding!();"), "{lib}");
        assert!(lib.contains("#[doc = \"The version.\\nSecond line \\\"quoted\\\".\"]\n#[uniffi::export]\npub fn version_of(path: String, n: u8) -> Result<String, crate::error::KitError> {"), "{lib}");
        assert!(lib.contains("std::hint::black_box((path, n,)); if std::hint::black_box(false) { Err(crate::error::KitError::floor()) } else { Ok(std::hint::black_box(String::new())) }"), "{lib}");
        assert!(
            lib.contains(
                "pub mod error {\n#[derive(Debug, uniffi::Error)]\n#[uniffi(flat_error)]\npub enum KitError {\n    Bad,\n    Worse,\n}"
            ),
            "{lib}"
        );
        assert!(lib.contains("0 => Self::Bad,\n            _ => Self::Worse,"), "{lib}");
    }

    #[test]
    fn unsupported_metadata_stops_the_generator_naming_the_item() {
        let ns = Metadata::Namespace(NamespaceMetadata { crate_name: "kit".into(), name: "kit".into() });
        let f = Metadata::Func(FnMetadata {
            module_path: "kit".into(),
            name: "later".into(),
            orig_name: None,
            is_async: true,
            inputs: vec![],
            return_type: None,
            throws: None,
            checksum: None,
            docstring: None,
        });
        let err = generate(&[ns, f]).err().expect("async is not supported").to_string();
        assert!(err.contains("later is async"), "{err}");
    }
}
