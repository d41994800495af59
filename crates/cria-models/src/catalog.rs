//! The curated model catalog (`models/catalog.toml`), parsed and validated.
//!
//! Contract: [`Catalog::parse`] accepts only a catalog where ids are unique, every URL is https
//! on an allow-listed host and names a plain file, every size is positive, sizes marked exact
//! or approximate honestly (`size_bytes` exact, `approx_size_bytes` published/rounded),
//! checksums are 64 hex digits or the word `unknown`, mmproj references resolve, and split
//! parts are complete (`-00001-of-0000N` … `-0000N-of-0000N`, same base name). A catalog entry
//! turns into [`crate::planner::ModelFacts`] (estimated) and a [`crate::download::DownloadJob`].

use std::collections::HashSet;

use serde::Deserialize;

use crate::download::{DownloadFile, DownloadJob};
use crate::names;
use crate::net::{self, NetworkPolicy};
use crate::planner::{AttentionLayout, ModelFacts};
use crate::{ModelsError, Result};

/// The catalog shipped with Cria.
pub const BUNDLED: &str = include_str!("../../../models/catalog.toml");

/// The written-down value for "we do not know this checksum".
pub const UNKNOWN: &str = "unknown";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub schema: u32,
    #[serde(rename = "model")]
    pub models: Vec<CatalogModel>,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
    #[serde(rename = "mmproj", default)]
    pub mmprojs: Vec<Mmproj>,
}

/// A model family member (architecture facts shared by its quantizations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub license: String,
    pub license_url: String,
    pub context_length: u32,
    /// "fast" (small text models for quick replies) or "main".
    pub profile: String,
    pub layers: u32,
    pub embedding: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub vocab: u32,
    pub total_params: u64,
    pub active_params: u64,
    #[serde(default)]
    pub moe: Option<MoeFacts>,
    #[serde(default)]
    pub chunked_attention: Option<ChunkedAttention>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeFacts {
    pub experts: u32,
    pub experts_used: u32,
    pub shared_expert: bool,
    /// Layers with routed experts.
    pub moe_layers: u32,
    /// Parameters in routed expert tensors.
    pub expert_params: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkedAttention {
    pub window: u32,
    pub full_attention_every: u32,
}

/// One downloadable quantization of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub id: String,
    pub model: String,
    pub quantization: String,
    /// Average bits per weight of the routed experts as published.
    pub bits: f64,
    pub repo: String,
    pub revision: String,
    #[serde(default)]
    pub mmproj: Option<String>,
    /// Total size of all files as published (rounded); exact sizes are per file when known.
    pub approx_size_bytes: u64,
    pub files: Vec<CatalogFile>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub url: String,
    /// Exact size in bytes, when known.
    #[serde(default)]
    pub size_bytes: Option<u64>,
    pub sha256: String,
}

/// A vision projector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mmproj {
    pub id: String,
    pub model: String,
    /// Size as published (rounded) when the exact size is not known.
    pub approx_size_bytes: u64,
    pub file: CatalogFile,
}

impl CatalogFile {
    pub fn file_name(&self) -> Result<&str> {
        names::last_component(self.url.split(['?', '#']).next().unwrap_or(&self.url))
    }

    pub fn known_sha256(&self) -> Option<&str> {
        (self.sha256 != UNKNOWN).then_some(self.sha256.as_str())
    }

    fn to_download(&self) -> Result<DownloadFile> {
        Ok(DownloadFile {
            url: self.url.clone(),
            file_name: self.file_name()?.to_owned(),
            size: self.size_bytes,
            sha256: self.known_sha256().map(str::to_ascii_lowercase),
        })
    }
}

impl Variant {
    /// The sum of exact file sizes when all are known, else the published total.
    pub fn size_estimate(&self) -> u64 {
        let exact: Option<u64> = self.files.iter().map(|file| file.size_bytes).sum();
        exact.unwrap_or(self.approx_size_bytes)
    }
}

impl Mmproj {
    pub fn size_estimate(&self) -> u64 {
        self.file.size_bytes.unwrap_or(self.approx_size_bytes)
    }
}

/// A split GGUF part name: `<base>-00002-of-00003.gguf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    pub base: String,
    pub index: u32,
    pub count: u32,
}

impl SplitName {
    /// Parses llama.cpp's split naming; None for ordinary files.
    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (base, index) = rest.rsplit_once('-')?;
        if index.len() != 5 || count.len() != 5 || base.is_empty() {
            return None;
        }
        let index: u32 = index.parse().ok()?;
        let count: u32 = count.parse().ok()?;
        (index >= 1 && index <= count).then(|| Self {
            base: base.to_owned(),
            index,
            count,
        })
    }

    pub fn part_name(&self, index: u32) -> String {
        format!("{}-{index:05}-of-{:05}.gguf", self.base, self.count)
    }
}

impl Catalog {
    /// The catalog bundled with Cria.
    pub fn bundled() -> Result<Self> {
        Self::parse(BUNDLED)
    }

    /// Parses and validates a catalog.
    pub fn parse(text: &str) -> Result<Self> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|error| ModelsError::CatalogParse(error.to_string()))?;
        catalog.validate()?;
        Ok(catalog)
    }

    pub fn model(&self, id: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|model| model.id == id)
    }

    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.variants.iter().find(|variant| variant.id == id)
    }

    pub fn mmproj(&self, id: &str) -> Option<&Mmproj> {
        self.mmprojs.iter().find(|mmproj| mmproj.id == id)
    }

    /// The download of a variant: its (split) model files, then its mmproj if asked for.
    pub fn download_job(&self, variant_id: &str, with_vision: bool) -> Result<DownloadJob> {
        let variant = self
            .variant(variant_id)
            .ok_or_else(|| ModelsError::UnknownModel(variant_id.to_owned()))?;
        let mut files = variant
            .files
            .iter()
            .map(CatalogFile::to_download)
            .collect::<Result<Vec<_>>>()?;
        if with_vision && let Some(mmproj_id) = &variant.mmproj {
            let mmproj = self
                .mmproj(mmproj_id)
                .ok_or_else(|| ModelsError::UnknownModel(mmproj_id.clone()))?;
            files.push(mmproj.file.to_download()?);
        }
        Ok(DownloadJob { files })
    }

    /// Planner facts for a variant, from the published sizes and parameter counts.
    pub fn facts(&self, variant_id: &str, with_vision: bool) -> Result<ModelFacts> {
        let variant = self
            .variant(variant_id)
            .ok_or_else(|| ModelsError::UnknownModel(variant_id.to_owned()))?;
        let model = self
            .model(&variant.model)
            .ok_or_else(|| ModelsError::UnknownModel(variant.model.clone()))?;
        let weight_bytes = variant.size_estimate();
        let mmproj_bytes = match (&variant.mmproj, with_vision) {
            (Some(id), true) => self.mmproj(id).map_or(0, Mmproj::size_estimate),
            _ => 0,
        };
        let (experts, experts_used, moe_layers, expert_bytes) = match &model.moe {
            Some(moe) => {
                // Dynamic quants store experts at fewer bits than attention, so the parameter
                // share slightly overstates the experts' byte share; the error is a few percent
                // of the file and errs towards more GPU memory for the rest.
                let share = moe.expert_params as f64 / model.total_params as f64;
                let bytes = (weight_bytes as f64 * share) as u64;
                (moe.experts, moe.experts_used, moe.moe_layers, bytes)
            }
            None => (0, 0, 0, 0),
        };
        Ok(ModelFacts {
            name: format!("{} {}", model.name, variant.quantization),
            architecture: model.architecture.clone(),
            weight_bytes,
            expert_bytes,
            layers: model.layers,
            moe_layers,
            embedding: model.embedding,
            heads: model.heads,
            kv_heads: model.kv_heads,
            head_dim: model.head_dim,
            vocab: model.vocab,
            context_length: model.context_length,
            experts,
            experts_used,
            attention: match &model.chunked_attention {
                Some(chunked) => AttentionLayout::Chunked {
                    window: chunked.window,
                    full_attention_every: chunked.full_attention_every,
                },
                None => AttentionLayout::Full,
            },
            mmproj_bytes,
            estimated: true,
        })
    }

    fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(ModelsError::CatalogInvalid(message));
        if self.schema != 1 {
            return invalid(format!("unsupported schema {}", self.schema));
        }
        let policy = NetworkPolicy::production();
        let mut ids = HashSet::new();
        for id in self
            .models
            .iter()
            .map(|model| &model.id)
            .chain(self.variants.iter().map(|variant| &variant.id))
            .chain(self.mmprojs.iter().map(|mmproj| &mmproj.id))
        {
            if names::file_name(id).is_err() || *id != names::slug(id) {
                return invalid(format!("id {id:?} must be a lowercase slug"));
            }
            if !ids.insert(id.as_str()) {
                return invalid(format!("duplicate id {id:?}"));
            }
        }
        for model in &self.models {
            check_https(&model.license_url, &model.id)?;
            let dims = [
                model.context_length,
                model.layers,
                model.embedding,
                model.heads,
                model.kv_heads,
                model.head_dim,
                model.vocab,
            ];
            if dims.contains(&0) || model.total_params == 0 || model.active_params == 0 {
                return invalid(format!(
                    "{}: dimensions and parameter counts must be positive",
                    model.id
                ));
            }
            if model.active_params > model.total_params {
                return invalid(format!("{}: more active than total parameters", model.id));
            }
            if !matches!(model.profile.as_str(), "fast" | "main") {
                return invalid(format!("{}: profile must be fast or main", model.id));
            }
            if let Some(moe) = &model.moe
                && (moe.experts < 2
                    || moe.experts_used == 0
                    || moe.experts_used > moe.experts
                    || moe.moe_layers == 0
                    || moe.moe_layers > model.layers
                    || moe.expert_params >= model.total_params)
            {
                return invalid(format!(
                    "{}: inconsistent mixture-of-experts facts",
                    model.id
                ));
            }
            if let Some(chunked) = &model.chunked_attention
                && (chunked.window == 0 || chunked.full_attention_every == 0)
            {
                return invalid(format!(
                    "{}: chunked attention needs a window and a period",
                    model.id
                ));
            }
        }
        for mmproj in &self.mmprojs {
            if self.model(&mmproj.model).is_none() {
                return invalid(format!(
                    "mmproj {} names unknown model {}",
                    mmproj.id, mmproj.model
                ));
            }
            check_file(&mmproj.file, &mmproj.id, &policy)?;
            if mmproj.approx_size_bytes == 0 {
                return invalid(format!("mmproj {}: size must be positive", mmproj.id));
            }
        }
        for variant in &self.variants {
            let Some(model) = self.model(&variant.model) else {
                return invalid(format!(
                    "variant {} names unknown model {}",
                    variant.id, variant.model
                ));
            };
            if let Some(mmproj_id) = &variant.mmproj {
                match self.mmproj(mmproj_id) {
                    Some(mmproj) if mmproj.model == model.id => {}
                    Some(_) => {
                        return invalid(format!(
                            "{}: mmproj {mmproj_id} is for another model",
                            variant.id
                        ));
                    }
                    None => {
                        return invalid(format!(
                            "{}: mmproj {mmproj_id} does not exist",
                            variant.id
                        ));
                    }
                }
            }
            if !(variant.bits > 0.0 && variant.bits <= 32.0) {
                return invalid(format!("{}: bits must be in (0, 32]", variant.id));
            }
            if variant.approx_size_bytes == 0 {
                return invalid(format!("{}: size must be positive", variant.id));
            }
            if variant.files.is_empty() {
                return invalid(format!("{}: no files", variant.id));
            }
            let mut file_names = Vec::new();
            for file in &variant.files {
                check_file(file, &variant.id, &policy)?;
                if !file
                    .url
                    .contains(&format!("/{}/resolve/{}/", variant.repo, variant.revision))
                {
                    return invalid(format!(
                        "{}: {} is not in {}@{}",
                        variant.id, file.url, variant.repo, variant.revision
                    ));
                }
                file_names.push(file.file_name()?.to_owned());
            }
            check_splits(&variant.id, &file_names)?;
        }
        Ok(())
    }
}

fn check_https(url: &str, owner: &str) -> Result<()> {
    if !url.starts_with("https://") {
        return Err(ModelsError::CatalogInvalid(format!(
            "{owner}: {url} is not https"
        )));
    }
    Ok(())
}

fn check_file(file: &CatalogFile, owner: &str, policy: &NetworkPolicy) -> Result<()> {
    let invalid = |message: String| Err(ModelsError::CatalogInvalid(format!("{owner}: {message}")));
    let url = reqwest::Url::parse(&file.url).map_err(|error| {
        ModelsError::CatalogInvalid(format!("{owner}: bad URL {}: {error}", file.url))
    })?;
    if let Err(error) = net::check_url(&url, policy) {
        return invalid(error.to_string());
    }
    let name = file.file_name()?;
    if !name.ends_with(".gguf") {
        return invalid(format!("{name} is not a .gguf file"));
    }
    if file.size_bytes == Some(0) {
        return invalid(format!("{name}: size must be positive"));
    }
    if file.sha256 != UNKNOWN && !net::is_sha256_hex(&file.sha256) {
        return invalid(format!(
            "{name}: sha256 must be 64 hex digits or \"unknown\""
        ));
    }
    Ok(())
}

fn check_splits(owner: &str, file_names: &[String]) -> Result<()> {
    let splits: Vec<SplitName> = file_names
        .iter()
        .filter_map(|name| SplitName::parse(name))
        .collect();
    if splits.is_empty() {
        if file_names.len() != 1 {
            return Err(ModelsError::CatalogInvalid(format!(
                "{owner}: several files but no split naming"
            )));
        }
        return Ok(());
    }
    let first = &splits[0];
    let consistent = splits.len() == file_names.len()
        && splits.len() == first.count as usize
        && splits.iter().enumerate().all(|(position, split)| {
            split.base == first.base
                && split.count == first.count
                && split.index as usize == position + 1
        });
    if !consistent {
        return Err(ModelsError::CatalogInvalid(format!(
            "{owner}: split parts must be {} 1..={} in order with one base name",
            first.base, first.count
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_catalog_is_valid_and_complete() {
        let catalog = Catalog::bundled().unwrap();
        let scout = catalog.model("llama-4-scout-17b-16e-instruct").unwrap();
        assert_eq!(scout.moe.as_ref().unwrap().experts, 16);
        let maverick = catalog.model("llama-4-maverick-17b-128e-instruct").unwrap();
        assert_eq!(maverick.moe.as_ref().unwrap().experts, 128);
        assert!(catalog.models.iter().any(|model| model.profile == "fast"));
        for variant in &catalog.variants {
            let facts = catalog.facts(&variant.id, true).unwrap();
            assert!(facts.weight_bytes > 0, "{}", variant.id);
            let job = catalog.download_job(&variant.id, true).unwrap();
            assert!(!job.files.is_empty());
        }
        // Several Llama 4 quantizations from below 2 bits to 4 bits and up.
        let scout_bits: Vec<f64> = catalog
            .variants
            .iter()
            .filter(|variant| variant.model == scout.id)
            .map(|variant| variant.bits)
            .collect();
        assert!(
            scout_bits.iter().any(|bits| *bits < 2.0) && scout_bits.iter().any(|bits| *bits >= 4.0)
        );
    }

    #[test]
    fn split_names_parse_and_round_trip() {
        let split = SplitName::parse("M-UD-Q4_K_XL-00002-of-00005.gguf").unwrap();
        assert_eq!(
            (split.base.as_str(), split.index, split.count),
            ("M-UD-Q4_K_XL", 2, 5)
        );
        assert_eq!(split.part_name(5), "M-UD-Q4_K_XL-00005-of-00005.gguf");
        for plain in [
            "m.gguf",
            "m-1-of-2.gguf",
            "m-00003-of-00002.gguf",
            "m-00000-of-00002.gguf",
            "-00001-of-00001.gguf",
        ] {
            assert_eq!(SplitName::parse(plain), None, "{plain}");
        }
    }

    const MODEL: &str = r#"
schema = 1
[[model]]
id = "m"
name = "M"
architecture = "llama"
license = "x"
license_url = "https://example.org/license"
context_length = 8192
profile = "fast"
layers = 2
embedding = 64
heads = 4
kv_heads = 2
head_dim = 16
vocab = 100
total_params = 1000
active_params = 1000
"#;

    fn variant(url: &str, extra: &str) -> String {
        format!(
            "{MODEL}\n[[variant]]\nid = \"m-q4\"\nmodel = \"m\"\nquantization = \"Q4\"\nbits = 4.5\nrepo = \"o/r\"\nrevision = \"main\"\napprox_size_bytes = 10\n{extra}\n[[variant.files]]\nurl = \"{url}\"\nsha256 = \"unknown\"\n"
        )
    }

    #[test]
    fn catalog_rules_are_enforced() {
        let good = "https://huggingface.co/o/r/resolve/main/m.gguf";
        assert!(Catalog::parse(&variant(good, "")).is_ok());
        let cases = [
            variant("http://huggingface.co/o/r/resolve/main/m.gguf", ""),
            variant("https://evil.example/o/r/resolve/main/m.gguf", ""),
            variant("https://huggingface.co/o/r/resolve/main/..", ""),
            variant("https://huggingface.co/o/r/resolve/main/m.bin", ""),
            variant("https://huggingface.co/o/other/resolve/main/m.gguf", ""),
            variant(good, "mmproj = \"missing\""),
            variant(good, "").replace("approx_size_bytes = 10", "approx_size_bytes = 0"),
            variant(good, "").replace("approx_size_bytes = 10", ""),
            variant(good, "").replace(
                "sha256 = \"unknown\"",
                "size_bytes = 0\nsha256 = \"unknown\"",
            ),
            variant(good, "").replace("\"unknown\"", "\"abc\""),
            variant(good, "").replace("id = \"m-q4\"", "id = \"m\""),
            variant(good, "").replace("id = \"m-q4\"", "id = \"../m\""),
            variant(good, "").replace("url = ", "typo = 1\nurl = "),
            format!(
                "{}[[variant.files]]\nurl = \"{good}\"\nsha256 = \"unknown\"\n",
                variant(good, "")
            ),
        ];
        for (index, case) in cases.iter().enumerate() {
            assert!(
                Catalog::parse(case).is_err(),
                "case {index} accepted:\n{case}"
            );
        }
    }

    #[test]
    fn incomplete_split_sets_are_refused() {
        let part = |index: u32, count: u32| {
            format!("https://huggingface.co/o/r/resolve/main/m-{index:05}-of-{count:05}.gguf")
        };
        let two = variant(&part(1, 2), "").replace(
            "sha256 = \"unknown\"\n",
            &format!(
                "sha256 = \"unknown\"\n[[variant.files]]\nurl = \"{}\"\nsha256 = \"unknown\"\n",
                part(2, 2)
            ),
        );
        assert!(Catalog::parse(&two).is_ok());
        assert!(Catalog::parse(&variant(&part(1, 2), "")).is_err());
        let wrong_order = two
            .replace("m-00001-of", "m-0000X-of")
            .replace("m-0000X-of-00002", "m-00002-of-00002");
        assert!(Catalog::parse(&wrong_order).is_err());
    }
}
