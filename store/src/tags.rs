//! Stable tags for the enums the store persists (in ops and checkpoints).
//!
//! postcard writes an enum variant as serde's variant index, which `derive` takes from
//! the variant's position: reordering variants, or adding one anywhere but at the end,
//! would silently change what bytes on disk mean. [`stable_tags!`] implements
//! `Serialize` and `Deserialize` with the index set by hand instead, so the source
//! order no longer matters and a tag, once written, means the same forever.
//!
//! Rules: never change or reuse a tag; a new variant takes a new tag. Every variant
//! must be listed (the generated `match` does not compile otherwise); `tests` in
//! `model.rs` pins every tag. An unknown tag is a decoding error (corruption: a store
//! written by a newer version is refused by its format version before any decoding).

/// `stable_tags!(Enum { 0 => Unit, 1 => Newtype(value), 2 => Struct { a, b } })`:
/// serde for `Enum` with those tags. Newtype variants hold one value; struct variants
/// list their fields in declaration order.
macro_rules! stable_tags {
    ($name:ident { $($tag:literal => $variant:ident $(($value:ident))? $({ $($field:ident),+ })?),+ $(,)? }) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(stable_tags!(@pattern $name $variant $(($value))? $({ $($field),+ })?) => {
                        stable_tags!(@serialize serializer $name $tag $variant $(($value))? $({ $($field),+ })?)
                    })+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                struct Tagged;
                impl<'de> serde::de::Visitor<'de> for Tagged {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a tagged ", stringify!($name)))
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(
                        self,
                        data: A,
                    ) -> Result<$name, A::Error> {
                        #[allow(unused_imports)]
                        use serde::de::VariantAccess;
                        let (tag, variant): (u32, A::Variant) = data.variant()?;
                        match tag {
                            $($tag => stable_tags!(@deserialize variant $name $variant $(($value))? $({ $($field),+ })?),)+
                            other => Err(serde::de::Error::custom(format_args!(
                                concat!("unknown ", stringify!($name), " tag {}"),
                                other
                            ))),
                        }
                    }
                }
                deserializer.deserialize_enum(
                    stringify!($name),
                    &[$(stringify!($variant)),+],
                    Tagged,
                )
            }
        }
    };

    (@pattern $name:ident $variant:ident) => { $name::$variant };
    (@pattern $name:ident $variant:ident ($value:ident)) => { $name::$variant($value) };
    (@pattern $name:ident $variant:ident {$($field:ident),+}) => { $name::$variant { $($field),+ } };

    (@serialize $s:ident $name:ident $tag:literal $variant:ident) => {
        $s.serialize_unit_variant(stringify!($name), $tag, stringify!($variant))
    };
    (@serialize $s:ident $name:ident $tag:literal $variant:ident ($value:ident)) => {
        $s.serialize_newtype_variant(stringify!($name), $tag, stringify!($variant), $value)
    };
    (@serialize $s:ident $name:ident $tag:literal $variant:ident {$($field:ident),+}) => {{
        use serde::ser::SerializeStructVariant;
        let fields = [$(stringify!($field)),+];
        let mut out = $s.serialize_struct_variant(
            stringify!($name),
            $tag,
            stringify!($variant),
            fields.len(),
        )?;
        $(out.serialize_field(stringify!($field), $field)?;)+
        out.end()
    }};

    (@deserialize $v:ident $name:ident $variant:ident) => {
        $v.unit_variant().map(|()| $name::$variant)
    };
    (@deserialize $v:ident $name:ident $variant:ident ($value:ident)) => {
        $v.newtype_variant().map($name::$variant)
    };
    (@deserialize $v:ident $name:ident $variant:ident {$($field:ident),+}) => {{
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = $name;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "::", stringify!($variant)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<$name, A::Error> {
                $(let $field = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::missing_field(stringify!($field)))?;)+
                Ok($name::$variant { $($field),+ })
            }
        }
        $v.struct_variant(&[$(stringify!($field)),+], Fields)
    }};
}

pub(crate) use stable_tags;
