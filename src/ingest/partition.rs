//! A day's partition `OUT/usage/date=D/usage.parquet`: row groups streamed
//! to a temporary file, renamed into place when the day is complete.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::store;

use super::*;

/// The day's partition: row groups streamed to a temporary file, renamed
/// into place when the day is complete (removed when it has no rows).
/// Every failure names the file and the operating system's reason.
pub(super) struct PartitionWriter {
    pub(super) path: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) writer: Option<polars::io::parquet::write::BatchedWriter<store::RecordingFile>>,
    pub(super) io_error: store::FirstIoError,
    pub(super) pending: Option<DataFrame>,
    pub(super) rows: u64,
}

impl PartitionWriter {
    pub(super) fn new(path: &Path) -> Result<PartitionWriter> {
        let dir = path.parent().expect("partitions have a folder");
        let tmp = dir.join(format!(".usage.parquet.tmp-{}", std::process::id()));
        Ok(PartitionWriter {
            path: path.to_path_buf(),
            tmp,
            writer: None,
            io_error: store::FirstIoError::default(),
            pending: None,
            rows: 0,
        })
    }

    pub(super) fn push(&mut self, df: DataFrame) -> Result<()> {
        if df.height() == 0 {
            return Ok(());
        }
        self.rows += df.height() as u64;
        match &mut self.pending {
            Some(pending) => {
                pending
                    .vstack_mut(&df)
                    .map_err(|e| self_error(&self.tmp, e))?;
            }
            None => self.pending = Some(df),
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

    pub(super) fn flush(&mut self) -> Result<()> {
        let Some(mut df) = self.pending.take() else {
            return Ok(());
        };
        df.rechunk_mut_par();
        if self.writer.is_none() {
            let dir = self.tmp.parent().expect("has a folder");
            std::fs::create_dir_all(dir).map_err(store::failed("create", dir))?;
            let (file, io_error) = store::RecordingFile::create(&self.tmp)?;
            self.io_error = io_error;
            let writer = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Snappy)
                .batched(df.schema())
                .map_err(|e| self.write_error(e))?;
            self.writer = Some(writer);
        }
        let written = self
            .writer
            .as_mut()
            .expect("created above")
            .write_batch(&df);
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

/// A polars error writing the partition at `tmp`.
fn self_error(tmp: &Path, source: PolarsError) -> IngestError {
    IngestError::Partition {
        path: tmp.to_path_buf(),
        source,
    }
}
