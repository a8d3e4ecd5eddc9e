//! TensorBoard's event files (`events.out.tfevents.*`), what Lightning's
//! TensorBoardLogger writes: TFRecord-framed `Event` protocol buffers
//! (prost) holding scalars, images and text. The messages are declared here
//! with the field numbers of TensorFlow's event.proto and summary.proto; only
//! the fields written are declared.
use crate::error::{Error, Result};
use prost::Message;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    image: Option<Image>,
    #[prost(message, optional, tag = "8")]
    tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
struct PluginData {
    #[prost(string, tag = "1")]
    plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    /// DT_STRING is 7.
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    string_val: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
struct Dim {
    #[prost(int64, tag = "1")]
    size: i64,
}

// The HParams plugin's records (tensorboard/plugins/hparams/api.proto and
// plugin_data.proto), as `torch.utils.tensorboard.summary.hparams` writes them.

#[derive(Clone, PartialEq, Message)]
struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    version: i32,
    #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
    data: Option<HParamsData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum HParamsData {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStartInfo(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEndInfo(SessionEndInfo),
}

#[derive(Clone, PartialEq, Message)]
struct Experiment {
    #[prost(message, repeated, tag = "4")]
    hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    metric_infos: Vec<MetricInfo>,
}

#[derive(Clone, PartialEq, Message)]
struct HParamInfo {
    #[prost(string, tag = "1")]
    name: String,
    /// DataType: 1 string, 2 bool, 3 float64.
    #[prost(int32, tag = "4")]
    data_type: i32,
}

#[derive(Clone, PartialEq, Message)]
struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    name: Option<MetricName>,
}

#[derive(Clone, PartialEq, Message)]
struct MetricName {
    #[prost(string, tag = "1")]
    group: String,
    #[prost(string, tag = "2")]
    tag: String,
}

#[derive(Clone, PartialEq, Message)]
struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    hparams: std::collections::BTreeMap<String, ProtoValue>,
    #[prost(double, tag = "5")]
    start_time_secs: f64,
}

#[derive(Clone, PartialEq, Message)]
struct SessionEndInfo {
    /// Status: 1 is STATUS_SUCCESS.
    #[prost(int32, tag = "1")]
    status: i32,
    #[prost(double, tag = "2")]
    end_time_secs: f64,
}

/// google.protobuf.Value, the kinds hyperparameters take.
#[derive(Clone, PartialEq, Message)]
struct ProtoValue {
    #[prost(oneof = "ProtoKind", tags = "2, 3, 4")]
    kind: Option<ProtoKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum ProtoKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    String(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// A hyperparameter as the HParams plugin types it: numbers, booleans, and
/// everything else (lists, objects, null) as its JSON text.
fn proto_value(v: &serde_json::Value) -> (ProtoKind, i32) {
    match v {
        serde_json::Value::Number(n) => (ProtoKind::Number(n.as_f64().unwrap_or(f64::NAN)), 3),
        serde_json::Value::Bool(b) => (ProtoKind::Bool(*b), 2),
        serde_json::Value::String(s) => (ProtoKind::String(s.clone()), 1),
        other => (ProtoKind::String(other.to_string()), 1),
    }
}

/// TFRecord's checksum: CRC-32C, rotated and offset.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// One event file, appended to record by record (each flushed, so that a
/// killed run keeps what it logged; TensorBoard reads every file of a folder).
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// A new `events.out.tfevents.<time>.<host>.<pid>.<n>` in `dir` (made if missing).
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot make the log folder: {e}")))?;
        let host =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
        // Never another writer's file: two made in the same second by one
        // process differ in the last number, as TensorFlow's do.
        let stem = format!("events.out.tfevents.{}.{host}.{}", now() as u64, std::process::id());
        let mut n = 0;
        let (file, path) = loop {
            let path = dir.join(format!("{stem}.{n}"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(Error::file(&path, format!("cannot create: {e}"))),
            }
        };
        let mut w = Self { file, path };
        w.write(&Event { wall_time: now(), step: 0, file_version: Some("brain.Event:2".into()), summary: None })?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, event: &Event) -> Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(&data);
        record.extend_from_slice(&masked_crc(&data).to_le_bytes());
        self.file.write_all(&record).and_then(|_| self.file.flush()).map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }

    fn value(&mut self, step: i64, value: Value) -> Result<()> {
        self.write(&Event { wall_time: now(), step, file_version: None, summary: Some(Summary { value: vec![value] }) })
    }

    /// A scalar, as `SummaryWriter.add_scalar(tag, value, step)`.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        self.value(step, Value { tag: tag.into(), simple_value: Some(value as f32), image: None, tensor: None, metadata: None })
    }

    /// A PNG image, as `add_image`; its size is read from the PNG header.
    pub fn add_png(&mut self, tag: &str, png: &[u8], step: i64) -> Result<()> {
        if png.len() < 26 || &png[1..4] != b"PNG" {
            return Err(Error::invalid("png", "the bytes of a PNG file", format!("{} bytes", png.len())));
        }
        let be = |i: usize| i32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
        let colorspace = match png[25] {
            0 => 1,
            4 => 2,
            6 => 4,
            _ => 3,
        };
        let image = Image { width: be(16), height: be(20), colorspace, encoded_image_string: png.to_vec() };
        self.value(step, Value { tag: tag.into(), simple_value: None, image: Some(image), tensor: None, metadata: None })
    }

    /// Hyperparameters for TensorBoard's HParams dashboard, as
    /// `SummaryWriter.add_hparams` (and Lightning's `log_hyperparams`) write
    /// them: the experiment (each hyperparameter's name and type, and the
    /// scalar tags shown as its metrics), the session's values, its end.
    pub fn add_hparams(&mut self, hparams: &serde_json::Map<String, serde_json::Value>, metrics: &[&str], step: i64) -> Result<()> {
        let mut infos = Vec::new();
        let mut values = std::collections::BTreeMap::new();
        for (name, v) in hparams {
            let (kind, data_type) = proto_value(v);
            infos.push(HParamInfo { name: name.clone(), data_type });
            values.insert(name.clone(), ProtoValue { kind: Some(kind) });
        }
        let metric_infos =
            metrics.iter().map(|t| MetricInfo { name: Some(MetricName { group: String::new(), tag: (*t).into() }) }).collect();
        let records = [
            ("_hparams_/experiment", HParamsData::Experiment(Experiment { hparam_infos: infos, metric_infos })),
            ("_hparams_/session_start_info", HParamsData::SessionStartInfo(SessionStartInfo { hparams: values, start_time_secs: now() })),
            ("_hparams_/session_end_info", HParamsData::SessionEndInfo(SessionEndInfo { status: 1, end_time_secs: now() })),
        ];
        for (tag, data) in records {
            let content = HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
            let metadata = SummaryMetadata { plugin_data: Some(PluginData { plugin_name: "hparams".into(), content }) };
            self.value(step, Value { tag: tag.into(), simple_value: None, image: None, tensor: None, metadata: Some(metadata) })?;
        }
        Ok(())
    }

    /// Markdown text, as `add_text` (TensorBoard's Text tab).
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let tensor = TensorProto {
            dtype: 7,
            tensor_shape: Some(TensorShape { dim: vec![Dim { size: 1 }] }),
            string_val: vec![text.as_bytes().to_vec()],
        };
        let metadata = SummaryMetadata { plugin_data: Some(PluginData { plugin_name: "text".into(), content: Vec::new() }) };
        self.value(step, Value { tag: tag.into(), simple_value: None, image: None, tensor: Some(tensor), metadata: Some(metadata) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_writers_in_one_second_write_two_files() {
        let dir = std::env::temp_dir().join(format!("byol-tb-{}", std::process::id()));
        let (a, b) = (EventWriter::create(&dir).unwrap(), EventWriter::create(&dir).unwrap());
        assert_ne!(a.path(), b.path());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checksum_is_tfrecords_masked_crc32c() {
        // TensorFlow's crc32c::Mask of crc32c("") = 0 is 0xa282ead8.
        assert_eq!(masked_crc(b""), 0xa282_ead8);
    }
}
