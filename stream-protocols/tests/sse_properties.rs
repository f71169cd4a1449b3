//! Properties of Server-Sent Events: what is written parses back, in any pieces.

use proptest::prelude::*;
use stream_protocols::sse::{Event, Item, KEEP_ALIVE, Parser};

/// An event's fields, owned.
#[derive(Debug, Clone)]
struct Fields {
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<u64>,
}

/// A single-line value: anything but line breaks (and NUL, which would void an id).
fn single_line() -> impl Strategy<Value = String> {
    "[^\r\n\0]{0,20}"
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop::option::of(single_line()),
        "(?s).{0,60}",
        prop::option::of(single_line()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(event, data, id, retry)| Fields {
            event,
            data,
            id,
            retry,
        })
}

/// Parses `bytes` cut at `cuts`.
fn parse(bytes: &[u8], cuts: &[usize]) -> Vec<Item> {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut parser = Parser::default();
    cuts.windows(2)
        .flat_map(|piece| parser.push(&bytes[piece[0]..piece[1]]))
        .collect()
}

proptest! {
    #[test]
    fn events_and_keep_alives_parse_back_in_any_pieces(
        events in prop::collection::vec(prop::option::of(fields()), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for fields in &events {
            let Some(fields) = fields else {
                bytes.extend_from_slice(KEEP_ALIVE);
                expected.push(Item::Comment(String::new()));
                continue;
            };
            Event {
                event: fields.event.as_deref(),
                data: &fields.data,
                id: fields.id.as_deref(),
                retry: fields.retry,
            }
            .encode_into(&mut bytes);
            // Every line break of the data reads back as a line feed.
            let data = fields.data.replace("\r\n", "\n").replace('\r', "\n");
            expected.push(Item::Event {
                event: fields.event.clone(),
                data,
                id: fields.id.clone(),
                retry: fields.retry,
            });
        }
        prop_assert_eq!(&parse(&bytes, &[]), &expected);
        prop_assert_eq!(parse(&bytes, &cuts), expected);
    }

    #[test]
    fn any_input_parses_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = parse(&bytes, &[]);
        prop_assert_eq!(parse(&bytes, &cuts), whole);
    }
}
