//! Where images come from: datasets read by index (images in memory, image
//! folders, subsets, random splits) and image files decoded to tensors.
pub mod dataset;
pub mod image;
pub mod image_folder;
pub mod split;

pub use dataset::{Dataset, Item, Pixels, Sample, Subset, TensorDataset};
pub use image::{decode_image, decode_rgb_into, deinterleave, encode_png, save_png, DecodeBuffers};
pub use image_folder::ImageFolder;
pub use split::{random_split, split_lengths};
