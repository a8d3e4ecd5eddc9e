//! torchvision's `ImageFolder`: image files in one sub-folder per class.
use crate::data::dataset::{Dataset, Item, Pixels, Sample};
use crate::data::image::{decode_image, decode_rgb_into, DecodeBuffers};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// torchvision's `ImageFolder`: `root/<class>/**/<image>`, classes sorted by name.
pub struct ImageFolder {
    pub root: PathBuf,
    pub files: Vec<(PathBuf, i64)>,
    pub classes: Vec<String>,
}

impl ImageFolder {
    /// The extensions read when none are given: JPEG and PNG.
    pub fn default_extensions() -> Vec<String> {
        ["jpg", "jpeg", "png"].map(String::from).to_vec()
    }

    pub fn new(root: &Path, extensions: &[String]) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::file(root, "no such folder"));
        }
        let wanted: Vec<String> = extensions.iter().map(|e| e.trim_start_matches('.').to_ascii_lowercase()).collect();
        let mut classes = Vec::new();
        let mut files = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|e| Error::file(root, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for dir in entries {
            let label = classes.len() as i64;
            let mut found = Vec::new();
            walk(&dir, &wanted, &mut found);
            found.sort();
            if !found.is_empty() {
                classes.push(dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
                files.extend(found.into_iter().map(|f| (f, label)));
            }
        }
        if files.is_empty() {
            return Err(Error::file(root, format!("no images with extensions {wanted:?} in its sub-folders")));
        }
        Ok(Self { root: root.to_path_buf(), files, classes })
    }
}

fn walk(dir: &Path, wanted: &[String], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, wanted, out);
        } else if path.extension().map(|e| wanted.contains(&e.to_string_lossy().to_ascii_lowercase())).unwrap_or(false) {
            out.push(path);
        }
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn get(&self, index: usize) -> Result<std::result::Result<Sample, String>> {
        let (path, label) = &self.files[index];
        Ok(decode_image(path).map(|image| Sample { image, label: *label }))
    }
    fn read(&self, index: usize, buffers: &mut DecodeBuffers) -> Result<std::result::Result<Item, String>> {
        let (path, label) = &self.files[index];
        Ok(decode_rgb_into(path, buffers).map(|(height, width)| Item { pixels: Pixels::Decoded { height, width }, label: *label }))
    }
    fn describe(&self, index: usize) -> String {
        self.files[index].0.display().to_string()
    }
    fn path(&self, index: usize) -> Option<std::path::PathBuf> {
        Some(self.files[index].0.clone())
    }
}
