//! Property tests of the block cutter and the row parser: whatever bytes a
//! usage file holds, cutting it into chunks reads the same records as csv
//! reads from the whole, every record is a row or a reject (never lost,
//! never a panic), and line numbers follow the physical lines; the
//! splitter's rows and rejects are those csv's reading gives; and the
//! partition written from dictionaries is the file polars writes from the
//! same rows as strings.

use polars::prelude::{DataFrame, ParquetCompression, ParquetWriter};
use proptest::prelude::*;

use super::cut::*;
use super::day::*;
use super::index::*;
use super::partition::*;
use super::rows::*;
use super::*;
use crate::parse::Header;

/// The records csv reads from `bytes`, as raw fields.
fn csv_records(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    reader
        .byte_records()
        .map(|r| r.unwrap().iter().map(<[u8]>::to_vec).collect())
        .collect()
}

/// Bytes that look enough like CSV to reach every state of the cutter:
/// quotes at and inside fields, escaped quotes, commas, CR, LF, NUL,
/// non-ASCII and invalid UTF-8.
fn csv_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"\""[..],
        b"\"\"",
        b",",
        b"\n",
        b"\r\n",
        b"\r",
        b"a",
        b"12.5",
        b" ",
        b"\0",
        "Øst – æå".as_bytes(),
        b"\xff",
        b"\",\"",
        b"5\" disk",
    ]);
    prop::collection::vec(pieces, 0..120).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn chunks_cut_anywhere_read_the_same_records_as_the_whole(
        bytes in csv_like_bytes(),
        chunk_bytes in 1usize..40,
    ) {
        let mut cuts = record_cuts(&bytes, chunk_bytes);
        if cuts.last().is_none_or(|c| c.0 < bytes.len()) {
            cuts.push((bytes.len(), lines_in(&bytes)));
        }
        let mut start = 0;
        let mut chunked = Vec::new();
        for &(cut, lines) in &cuts {
            prop_assert!(cut > start || cut == bytes.len());
            prop_assert_eq!(lines, lines_in(&bytes[..cut]));
            chunked.extend(csv_records(&bytes[start..cut]));
            start = cut;
        }
        prop_assert_eq!(chunked, csv_records(&bytes));
    }

    /// Quick cuts are the line feeds after an even number of quotes, on any
    /// bytes, cut as `record_cuts` cuts record ends.
    #[test]
    fn quick_cuts_take_the_line_feeds_after_an_even_number_of_quotes(
        bytes in csv_like_bytes(),
        chunk_bytes in 1usize..40,
    ) {
        let (mut quotes, mut lines, mut ends) = (0u64, 0u64, Vec::new());
        for (i, byte) in bytes.iter().enumerate() {
            match byte {
                b'"' => quotes += 1,
                b'\n' => {
                    lines += 1;
                    if quotes % 2 == 0 {
                        ends.push((i + 1, lines));
                    }
                }
                _ => {}
            }
        }
        prop_assert_eq!(quick_cuts(&bytes, chunk_bytes), cuts_among(ends.into_iter(), chunk_bytes));
    }

    /// The guess at a record's field used to fetch its subscription ahead
    /// is the field csv reads, wherever it makes one with no CR up to its
    /// end (a CR ends a record for csv, in the field or before it) at the
    /// start of a record.
    #[test]
    fn a_plain_field_guess_is_the_field_csv_reads(bytes in csv_like_bytes(), n in 0usize..6) {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Ok(());
        };
        let through = |field: &str| &text[..field.as_ptr() as usize - text.as_ptr() as usize + field.len()];
        let guess = plain_field(text, 0, n).filter(|f| !through(f).contains('\r'));
        if let Some(field) = guess.filter(|_| !text.starts_with(['\n', '\r'])) {
            let records = csv_records(text.as_bytes());
            let read = records.first().and_then(|r| r.get(n)).map(Vec::as_slice);
            prop_assert_eq!(read, Some(field.as_bytes()));
        }
    }
}

/// The bundled sample's reference data.
fn sample_reference() -> Reference {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    crate::reference::load_reference(&dir).expect("the sample's reference data is valid")
}

/// The day the tests' usage is for (the sample's billing start).
fn october_first() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()
}

/// The usage file of [`october_first`], checked against `index`.
fn october_first_file<'a>(index: &'a ReferenceIndex<'a>) -> FileInput<'a> {
    static USAGE: std::sync::LazyLock<UsageSource> =
        std::sync::LazyLock::new(|| UsageSource::Folder(PathBuf::from(".")));
    FileInput {
        usage: &USAGE,
        path: Path::new("usage/2026-10-01.csv"),
        rel: "usage/2026-10-01.csv",
        day: october_first(),
        day_text: "2026-10-01",
        index,
        hash: false,
    }
}

/// The columns of [`HEADER`].
fn header_columns() -> UsageHeader {
    UsageHeader::new(&Header::new(HEADER.split(','))).expect("complete header")
}

const HEADER: &str = "date,billingAccountId,billingProfileId,subscriptionId,meterId,meterCategory,meterName,unitOfMeasure,quantity,unitPrice,costInBillingCurrency,billingCurrency,chargeType,publisherType,pricingModel,isAzureCreditEligible,resourceId";

const VALID: &str = "2026-10-01,ACC-NORDLYS,PRF-NORDLYS-NO,SUB-NO-PROD,m-1,Virtual Machines,\"D2s v3, \"\"Øst\"\"\",1 Hour,24,1.03,24.72,NOK,Usage,Azure,OnDemand,True,/r/1";

/// A usage file body: valid rows, and rows with random bytes spliced in.
fn usage_body() -> impl Strategy<Value = Vec<u8>> {
    let row = prop_oneof![
        3 => Just(VALID.as_bytes().to_vec()),
        2 => (csv_like_bytes(), 0usize..VALID.len()).prop_map(|(noise, at)| {
            let mut row = VALID.as_bytes().to_vec();
            row.splice(at..at, noise);
            row
        }),
        1 => csv_like_bytes(),
    ];
    prop::collection::vec(row, 0..40).prop_map(|rows| rows.join(&b"\n"[..]))
}

/// Parses `body` as the records after the header, cut every `chunk_bytes`
/// (quickly, or as csv reads it when a chunk is not well-formed): what
/// `read_file` does with a file's last block.
fn parse_cut(
    body: &[u8],
    chunk_bytes: usize,
    file: &FileInput,
) -> Result<(u64, u64, Vec<u64>), String> {
    let block = Block {
        bytes: body,
        ended: true,
        first_line: 2,
        quick: true,
    };
    let parsed = block
        .parse(chunk_bytes, &header_columns(), file)
        .map_err(|e| match e {
            ChunkError::Unreadable(detail) => detail,
            ChunkError::Polars(e) => e.to_string(),
        })?
        .expect("the last block is read to its end");
    assert_eq!(parsed.end, body.len());
    assert_eq!(parsed.lines, lines_in(body));
    let (mut read, mut accepted, mut reject_lines) = (0, 0, Vec::new());
    for chunk in parsed.chunks {
        read += chunk.rows_read;
        accepted += chunk.rows.height() as u64;
        reject_lines.extend(chunk.rejects.iter().map(|r| r.line));
    }
    Ok((read, accepted, reject_lines))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_usage_bytes_give_rows_and_rejects_that_reconcile_with_the_records(
        body in usage_body(),
        chunk_bytes in 1usize..400,
    ) {
        let reference = sample_reference();
        let index = ReferenceIndex::new(&reference, october_first());
        let file = october_first_file(&index);
        let whole = parse_cut(&body, usize::MAX, &file);
        let cut = parse_cut(&body, chunk_bytes, &file);
        match (&whole, std::str::from_utf8(&body)) {
            (Ok((read, accepted, reject_lines)), _) => {
                let records = csv_records(&body).len() as u64;
                prop_assert_eq!(*read, records, "every record is read");
                prop_assert_eq!(*read, accepted + reject_lines.len() as u64);
                let last_line = 1 + lines_in(&body) + 1;
                prop_assert!(reject_lines.iter().all(|l| (2..=last_line).contains(l)));
                // Non-decreasing: a lone CR ends a record without starting a line.
                prop_assert!(reject_lines.windows(2).all(|w| w[0] <= w[1]), "{:?}", reject_lines);
                prop_assert_eq!(&cut, &whole, "cut or whole, the same rows and rejects");
            }
            // Invalid UTF-8 rejects the file whole, cut or not.
            (Err(_), Err(_)) => prop_assert!(cut.is_err()),
            (Err(e), Ok(_)) => prop_assert!(false, "valid UTF-8 refused: {}", e),
        }
    }
}

/// Usage rows that are well-formed CSV, right or wrong as usage: valid,
/// every field quoted, a bad date, an unknown profile, a bad number, an
/// empty value, a field short or one too many, a line feed in a quoted
/// field, with LF or CRLF and blank lines between.
fn well_formed_usage_body() -> impl Strategy<Value = String> {
    let quoted_all = VALID
        .split(',')
        .map(|f| match f.starts_with('"') || f.ends_with('"') {
            true => f.to_string(),
            false => format!("\"{f}\""),
        })
        .collect::<Vec<_>>()
        .join(",");
    let rows = vec![
        VALID.to_string(),
        quoted_all,
        VALID.replace("2026-10-01", "2026-13-01"),
        VALID.replace("PRF-NORDLYS-NO", "PRF-NOPE"),
        VALID.replace(",24,", ",2x4,"),
        VALID.replace(",1 Hour,", ",,"),
        VALID.replace(",/r/1", ""),
        format!("{VALID},extra"),
        VALID.replace("Virtual Machines", "\"Virtual \"\"VM\"\", x\""),
        VALID.replace("Virtual Machines", "\"Virtual\nMachines\""),
        VALID.replace("2026-10-01", "\"2026-10-01\r\n\""),
    ];
    let row = prop::sample::select(rows);
    let end = prop::sample::select(vec!["\n", "\r\n", "\n\n", "\r\n\r\n"]);
    prop::collection::vec((row, end), 0..30)
        .prop_map(|rows| rows.iter().map(|(r, e)| format!("{r}{e}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The splitter gives the rows, rejects (line, reason, detail, raw)
    /// and row count that csv gives, for well-formed usage text.
    #[test]
    fn split_records_give_the_rows_and_rejects_csv_gives(body in well_formed_usage_body()) {
        let reference = sample_reference();
        let index = ReferenceIndex::new(&reference, october_first());
        let file = october_first_file(&index);
        let columns = header_columns();
        let split = split_chunk(&body, 2, &columns, &file).map_err(|_| "the splitter gave up");
        let split = split.and_then(|r| r.finish(&file, true).map_err(|_| "no frame")).unwrap();
        let read = read_chunk(body.as_bytes(), 2, &columns, &file).map_err(|_| "csv failed");
        let read = read.and_then(|r| r.finish(&file, false).map_err(|_| "no frame")).unwrap();
        prop_assert_eq!(split.rows_read, read.rows_read);
        prop_assert_eq!(&split.rejects, &read.rejects);
        let subscriptions = &index.subscription_texts;
        let split_rows = split.rows.to_frame(subscriptions).unwrap();
        let read_rows = read.rows.to_frame(subscriptions).unwrap();
        prop_assert!(split_rows.equals_missing(&read_rows), "{:?} vs {:?}", split_rows, read_rows);
        prop_assert_eq!(split.accepted_cost, read.accepted_cost);
    }

    /// On well-formed CSV, counting quotes cuts where following them does.
    #[test]
    fn quick_cuts_are_record_cuts_on_well_formed_text(
        body in well_formed_usage_body(),
        chunk_bytes in 1usize..600,
    ) {
        let bytes = body.as_bytes();
        prop_assert_eq!(quick_cuts(bytes, chunk_bytes), record_cuts(bytes, chunk_bytes));
    }
}

/// A quote inside an unquoted field (`5" disk`, read by csv as text)
/// throws counting quotes off: the quick cut falls on the line feed inside
/// the next record's quoted field. The splitter gives up on that chunk,
/// and the block is cut again as csv reads it.
#[test]
fn a_cut_misled_by_a_stray_quote_is_made_again_as_csv_reads() {
    let reference = sample_reference();
    let index = ReferenceIndex::new(&reference, october_first());
    let file = october_first_file(&index);
    let stray = VALID.replace("Virtual Machines", "5\" disk");
    let quoted_line_feed = VALID.replace("1 Hour", "\"1\nHour\"");
    let body = format!("{stray}\n{quoted_line_feed}\n{VALID}\n");
    let bytes = body.as_bytes();
    assert_ne!(quick_cuts(bytes, 1), record_cuts(bytes, 1));
    let whole = parse_cut(bytes, usize::MAX, &file).unwrap();
    assert_eq!(whole.0, 3);
    assert_eq!(parse_cut(bytes, 1, &file).unwrap(), whole);
}

/// Account, profile, subscription and currency of three subscriptions of
/// the sample (two profiles, two currencies).
const SUBSCRIPTIONS: [[&str; 4]; 3] = [
    ["ACC-NORDLYS", "PRF-NORDLYS-NO", "SUB-NO-PROD", "NOK"],
    ["ACC-NORDLYS", "PRF-NORDLYS-NO", "SUB-NO-DEV", "NOK"],
    ["ACC-NORDLYS", "PRF-NORDLYS-SE", "SUB-SE-PROD", "SEK"],
];

/// A valid usage row of subscription `sub`, meter `meter` and resource
/// `resource` (none for 0).
fn usage_row(sub: usize, meter: usize, resource: usize, i: usize) -> String {
    let [account, profile, subscription, currency] = SUBSCRIPTIONS[sub];
    let resource = match resource {
        0 => String::new(),
        r => format!("/subscriptions/{subscription}/resourceGroups/rg/vm-{r}"),
    };
    format!(
        "2026-10-01,{account},{profile},{subscription},m-{meter},Virtual Machines,\
         \"D{meter}s v3, \"\"Øst\"\"\",1 Hour,24,1.03,{i}.5,{currency},Usage,Azure,OnDemand,True,{resource}"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A partition written from dictionaries is, byte for byte, the file
    /// polars writes from the same rows as strings: with few distinct
    /// values or mostly distinct ones (where polars may choose plain
    /// encoding), resources with and without rows lacking one, from one
    /// chunk or several, of one file or two.
    #[test]
    fn a_partition_is_the_file_polars_writes_from_strings(
        picks in (1usize..400, 1usize..700).prop_flat_map(|(meters, resources)| {
            let every_row_has_one = any::<bool>();
            (prop::collection::vec((0usize..3, 0..meters, 0..resources), 1..500), every_row_has_one)
                .prop_map(|(picks, every_row_has_one)| {
                    picks.into_iter().map(|(sub, meter, resource)| {
                        (sub, meter, resource + usize::from(every_row_has_one))
                    }).collect::<Vec<_>>()
                })
        }),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let reference = sample_reference();
        let index = ReferenceIndex::new(&reference, october_first());
        let files = [october_first_file(&index), FileInput {
            rel: "usage/2026-10-01-b.csv",
            ..october_first_file(&index)
        }];
        let rows: Vec<String> = picks.iter().enumerate().map(|(i, &(sub, meter, resource))| {
            usage_row(sub, meter, resource, i)
        }).collect();
        let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(rows.len())).collect();
        ends.push(rows.len());
        ends.sort();
        let (mut start, mut batches) = (0, Vec::new());
        for (n, end) in ends.into_iter().enumerate() {
            let body = rows[start..end].iter().map(|r| format!("{r}\n")).collect::<String>();
            let file = &files[n % 2];
            let chunk = split_chunk(&body, 2, &header_columns(), file)
                .map_err(|_| "the splitter gave up")
                .and_then(|r| r.finish(file, true).map_err(|_| "no batch"))
                .unwrap();
            prop_assert!(chunk.rejects.is_empty(), "{:?}", chunk.rejects);
            batches.push(chunk.rows);
            start = end;
        }

        let dir = tempfile::tempdir().unwrap();
        let written = dir.path().join("usage.parquet");
        let mut writer = PartitionWriter::new(&written, index.subscription_texts.clone()).unwrap();
        let mut expected = None::<DataFrame>;
        for batch in batches {
            let frame = batch.to_frame(&index.subscription_texts).unwrap();
            match &mut expected {
                Some(all) => { all.vstack_mut(&frame).unwrap(); }
                None => expected = Some(frame),
            }
            writer.push(batch).unwrap();
        }
        prop_assert_eq!(writer.finish().unwrap(), rows.len() as u64);
        let mut expected = expected.unwrap();
        expected.rechunk_mut_par();
        let mut polars_file = Vec::new();
        let mut polars_writer = ParquetWriter::new(&mut polars_file)
            .with_compression(ParquetCompression::Snappy)
            .batched(expected.schema())
            .unwrap();
        polars_writer.write_batch(&expected).unwrap();
        polars_writer.finish().unwrap();
        drop(polars_writer);
        prop_assert!(std::fs::read(&written).unwrap() == polars_file, "the files differ");
    }
}
