//! Enums whose variants each have one name, on the wire and in the database, written once.

/// Declares a fieldless enum whose every variant has one string name, written once: serde
/// writes and reads it, `as_str` returns it (what the database stores), `parse` reads it back
/// and `ALL` lists the variants in order. Derives other than serde's go on the declaration as
/// usual.
///
/// The names are taken as `tt`, not `literal`: a `literal` fragment reaches derive macros
/// wrapped in an invisible group, and utoipa's `ToSchema` then ignores the `serde(rename)`
/// and documents the variants' Rust names.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $text:tt
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [Self; [$($text),+].len()] = [$(Self::$variant),+];

            /// The variant's name: what serde writes and the database stores.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The variant named `value`, if any.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use string_enum;

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema as _;

    string_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
        enum Colour {
            /// Documented variants keep their documentation.
            Red = "red",
            DarkBlue = "dark.blue",
        }
    }

    #[test]
    fn one_name_serves_serde_as_str_and_parse() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        for colour in Colour::ALL {
            let json = serde_json::to_string(&colour).unwrap();
            assert_eq!(json, format!("\"{}\"", colour.as_str()));
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), colour);
            assert_eq!(Colour::parse(colour.as_str()), Some(colour));
        }
        assert_eq!(Colour::DarkBlue.as_str(), "dark.blue");
        assert_eq!(Colour::parse("Red"), None);
        assert!(serde_json::from_str::<Colour>("\"DarkBlue\"").is_err());
    }

    #[test]
    fn the_openapi_schema_lists_the_same_names() {
        let schema = serde_json::to_value(Colour::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["red", "dark.blue"]));
    }
}
