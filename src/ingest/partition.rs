//! A day's partition `OUT/usage/date=D/usage.parquet`: row groups streamed
//! to a temporary file, renamed into place when the day is complete.
//!
//! polars' batched writer makes the file (its schema, footer and metadata);
//! row groups are encoded here by polars' parquet layer, column by column,
//! so the text columns `batch` keeps as dictionaries go in as they are.

use std::path::{Path, PathBuf};

use polars::io::parquet::write::{BatchedWriter, get_encodings};
use polars::prelude::*;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    Compressor, DynIter, DynStreamingIterator, FallibleStreamingIterator, Version, WriteOptions,
    array_to_columns,
};

use crate::day_sums::SubscriptionTexts;
use crate::store;

use super::batch::UsageBatch;
use super::day::ROW_GROUP_ROWS;
use super::{IngestError, Result};

/// The day's partition: row groups streamed to a temporary file, renamed
/// into place when the day is complete (removed when it has no rows).
/// Every failure names the file and the operating system's reason.
pub(super) struct PartitionWriter {
    pub(super) path: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) writer: Option<BatchedWriter<store::RecordingFile>>,
    pub(super) io_error: store::FirstIoError,
    pub(super) pending: Option<UsageBatch>,
    pub(super) subscriptions: std::sync::Arc<SubscriptionTexts>,
    pub(super) rows: u64,
}

impl PartitionWriter {
    /// The writer of the partition at `path`, whose rows name their
    /// subscriptions by position in `subscriptions`.
    pub(super) fn new(
        path: &Path,
        subscriptions: std::sync::Arc<SubscriptionTexts>,
    ) -> Result<PartitionWriter> {
        let dir = path.parent().expect("partitions have a folder");
        let tmp = dir.join(format!(".usage.parquet.tmp-{}", std::process::id()));
        Ok(PartitionWriter {
            path: path.to_path_buf(),
            tmp,
            writer: None,
            io_error: store::FirstIoError::default(),
            pending: None,
            subscriptions,
            rows: 0,
        })
    }

    pub(super) fn push(&mut self, batch: UsageBatch) -> Result<()> {
        if batch.height() == 0 {
            return Ok(());
        }
        self.rows += batch.height() as u64;
        match &mut self.pending {
            Some(pending) => {
                pending
                    .append(&batch)
                    .map_err(|e| self_error(&self.tmp, e))?;
            }
            None => self.pending = Some(batch),
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.height() >= ROW_GROUP_ROWS)
        {
            self.flush()?;
        }
        Ok(())
    }

    /// A polars error while writing, with the I/O reason polars may have
    /// lost (a full disk shows as "Invalid thrift: transport error").
    pub(super) fn write_error(&self, error: PolarsError) -> IngestError {
        match self.io_error.take() {
            Some(reason) => store::failed("write", &self.tmp)(reason).into(),
            None => self_error(&self.tmp, error),
        }
    }

    /// Writes the rows pending as one row group.
    pub(super) fn flush(&mut self) -> Result<()> {
        let Some(mut batch) = self.pending.take() else {
            return Ok(());
        };
        if self.writer.is_none() {
            let dir = self.tmp.parent().expect("has a folder");
            std::fs::create_dir_all(dir).map_err(store::failed("create", dir))?;
            let (file, io_error) = store::RecordingFile::create(&self.tmp)?;
            self.io_error = io_error;
            let writer = ParquetWriter::new(file)
                .with_compression(COMPRESSION)
                .batched(&batch.schema())
                .map_err(|e| self.write_error(e))?;
            self.writer = Some(writer);
        }
        let writer = self.writer.as_mut().expect("created above");
        let written = write_row_group(writer, &mut batch, &self.subscriptions);
        written.map_err(|e| self.write_error(e))
    }

    /// Completes the partition; returns its row count.
    pub(super) fn finish(mut self) -> Result<u64> {
        self.flush()?;
        match self.writer.take() {
            None => store::remove_if_exists(&self.path)?,
            Some(writer) => {
                let finished = writer.finish();
                if let Err(e) = finished {
                    return Err(self.write_error(e));
                }
                drop(writer);
                std::fs::File::open(&self.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(store::failed("write", &self.tmp))?;
                std::fs::rename(&self.tmp, &self.path)
                    .map_err(store::failed("rename into place", &self.path))?;
            }
        }
        Ok(self.rows)
    }

    pub(super) fn abort(mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.tmp);
    }
}

const COMPRESSION: ParquetCompression = ParquetCompression::Snappy;

/// Encodes `batch` as polars' `BatchedWriter::write_batch` does a frame
/// (the options its `ParquetWriter` makes, each column's encodings from
/// its type) and writes it as one row group.
fn write_row_group(
    writer: &mut BatchedWriter<store::RecordingFile>,
    batch: &mut UsageBatch,
    subscriptions: &SubscriptionTexts,
) -> PolarsResult<()> {
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: COMPRESSION.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let schema = batch.schema().to_arrow(CompatLevel::newest());
    let encodings = get_encodings(&schema);
    let fields = writer.parquet_schema().fields().to_vec();
    let mut columns = Vec::with_capacity(fields.len());
    for ((array, field), encoding) in batch
        .arrow_columns(subscriptions)
        .iter()
        .zip(fields)
        .zip(encodings.iter())
    {
        for pages in array_to_columns(array, field, options, encoding)? {
            // As polars does, its errors passed through the compressor.
            let pages = pages.map(|page| {
                page.map_err(|e| {
                    ParquetError::FeatureNotSupported(format!("reraised in polars: {e}"))
                })
            });
            let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new());
            columns.push(Ok(DynStreamingIterator::new(
                compressed.map_err(PolarsError::from),
            )));
        }
    }
    writer.write_row_groups(vec![DynIter::new(columns.into_iter())])
}

/// A polars error writing the partition at `tmp`.
fn self_error(tmp: &Path, source: PolarsError) -> IngestError {
    IngestError::Partition {
        path: tmp.to_path_buf(),
        source,
    }
}
