//! The few messages of W&B's `wandb/proto/wandb_internal.proto` an offline run needs, written
//! by hand with prost (no protoc at build time). Field numbers and types are those of the
//! proto shipped in the `wandb` Python package (checked against `wandb_internal_pb2` of wandb
//! 0.28.2; the tests read our files back with it); fields we never set are left out, which
//! protobuf allows.

/// One entry of the transaction log (`Record` in wandb_internal.proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// Sequence number, 1-based, increasing through the file.
    #[prost(int64, tag = "1")]
    pub num: i64,
    #[prost(oneof = "RecordType", tags = "2, 3, 5, 6, 17, 18, 21, 23")]
    pub record_type: Option<RecordType>,
    #[prost(message, optional, tag = "200")]
    pub info: Option<RecordInfo>,
}

// A record is built, encoded and dropped at once: the size of the largest variant (the run,
// once per file) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RecordType {
    #[prost(message, tag = "2")]
    History(HistoryRecord),
    #[prost(message, tag = "3")]
    Summary(SummaryRecord),
    #[prost(message, tag = "5")]
    Config(ConfigRecord),
    #[prost(message, tag = "6")]
    Files(FilesRecord),
    #[prost(message, tag = "17")]
    Run(RunRecord),
    #[prost(message, tag = "18")]
    Exit(RunExitRecord),
    #[prost(message, tag = "21")]
    Header(HeaderRecord),
    #[prost(message, tag = "23")]
    Preempting(RunPreemptingRecord),
}

/// `_RecordInfo`: the stream a record belongs to (the W&B run id).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordInfo {
    #[prost(string, tag = "1")]
    pub stream_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderRecord {
    #[prost(message, optional, tag = "1")]
    pub version_info: Option<VersionInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionInfo {
    #[prost(string, tag = "1")]
    pub producer: String,
    #[prost(string, tag = "2")]
    pub min_consumer: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(string, tag = "2")]
    pub entity: String,
    #[prost(string, tag = "3")]
    pub project: String,
    #[prost(message, optional, tag = "4")]
    pub config: Option<ConfigRecord>,
    #[prost(string, tag = "6")]
    pub run_group: String,
    #[prost(string, tag = "7")]
    pub job_type: String,
    #[prost(string, tag = "8")]
    pub display_name: String,
    #[prost(string, tag = "9")]
    pub notes: String,
    #[prost(string, repeated, tag = "10")]
    pub tags: Vec<String>,
    #[prost(string, tag = "13")]
    pub host: String,
    #[prost(int64, tag = "14")]
    pub starting_step: i64,
    #[prost(message, optional, tag = "17")]
    pub start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "21")]
    pub git: Option<GitRepoRecord>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GitRepoRecord {
    #[prost(string, tag = "1")]
    pub remote_url: String,
    #[prost(string, tag = "2")]
    pub commit: String,
}

/// `ConfigItem`, `HistoryItem` and `SummaryItem` share this layout: a key and its value as
/// JSON text.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<Item>,
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryStep {
    #[prost(int64, tag = "1")]
    pub num: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesRecord {
    #[prost(message, repeated, tag = "1")]
    pub files: Vec<FilesItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesItem {
    /// Relative to the offline run's `files/` directory.
    #[prost(string, tag = "1")]
    pub path: String,
    /// `FilesItem.PolicyType`: NOW = 0, END = 1, LIVE = 2.
    #[prost(int32, tag = "2")]
    pub policy: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunExitRecord {
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
    /// Seconds the run took.
    #[prost(int32, tag = "2")]
    pub runtime: i32,
}

/// Marks a run that stopped to be resumed (W&B shows it as preempted, not crashed).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPreemptingRecord {}
