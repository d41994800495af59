//! The model library: a folder with a `library.json` index of models Cria can run.
//!
//! Contract: models enter the library only validated by `cria-gguf` (every split part), either
//! referenced where they are or copied into `<library>/models/<id>/`. A vision projector (mmproj)
//! in the same folder is paired automatically when its metadata says it is one and its
//! projection width matches the model. The index is rewritten atomically (temp file, fsync,
//! rename, folder fsync), so a crash leaves the old or the new index, never a torn one; a
//! damaged index is reported, not silently replaced. Managed files are named only through
//! [`crate::names`], so nothing is created outside the library folder; removing a model deletes
//! managed files only, never a referenced file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cria_gguf::ModelInfo;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, SplitName};
use crate::download::DownloadedFile;
use crate::names;
use crate::planner::{self, AttentionLayout, ContextRequest, Machine, ModelFacts, Verdict};
use crate::{ModelsError, Result};

const INDEX_FILE: &str = "library.json";
const MODELS_DIR: &str = "models";
/// The index is tiny; anything bigger is not ours.
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// Folder entries looked at when searching for an mmproj next to a model.
const MAX_FOLDER_SCAN: usize = 2000;

/// How an imported file is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Use the file where it is (nothing copied; removing the model never deletes it).
    Reference,
    /// Copy it into the library folder.
    Copy,
}

/// Where a model's files live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// Absolute paths outside the library.
    Referenced {
        files: Vec<PathBuf>,
        mmproj: Option<PathBuf>,
    },
    /// File names inside `<library>/models/<id>/`.
    Managed {
        files: Vec<String>,
        mmproj: Option<String>,
    },
}

/// One model in the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryEntry {
    pub id: String,
    pub name: String,
    pub location: Location,
    pub size_bytes: u64,
    pub architecture: String,
    pub quantization: String,
    pub context_length: Option<u64>,
    pub facts: Option<ModelFacts>,
    #[serde(default)]
    pub catalog_variant: Option<String>,
}

/// A row of the library listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListingRow {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub size_bytes: u64,
    pub quantization: String,
    pub context_length: Option<u64>,
    pub vision: bool,
    pub verdict: Option<Verdict>,
    pub verdict_reason: String,
    pub planned_context: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    models: Vec<LibraryEntry>,
}

/// The library folder.
pub struct Library {
    dir: PathBuf,
    write_lock: Mutex<()>,
}

impl Library {
    /// Opens (creating if needed) the library at `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join(MODELS_DIR))
            .map_err(|error| ModelsError::io("creating the library folder", dir, error))?;
        let dir = dir
            .canonicalize()
            .map_err(|error| ModelsError::io("opening the library folder", dir, error))?;
        Ok(Self {
            dir,
            write_lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder a catalog variant downloads into (`<library>/models/<id>/`), created.
    pub fn download_dir(&self, variant_id: &str) -> Result<PathBuf> {
        let folder = self.managed_dir(variant_id)?;
        std::fs::create_dir_all(&folder)
            .map_err(|error| ModelsError::io("creating the model folder", &folder, error))?;
        Ok(folder)
    }

    fn managed_dir(&self, id: &str) -> Result<PathBuf> {
        let models = self.dir.join(MODELS_DIR);
        let folder = models.join(names::file_name(id)?);
        if std::fs::symlink_metadata(&folder).is_ok_and(|meta| !meta.is_dir()) {
            return Err(ModelsError::UnsafeName {
                name: folder.display().to_string(),
                reason: "something other than a folder is in the way",
            });
        }
        Ok(folder)
    }

    /// All models, in the order they were added.
    pub fn models(&self) -> Result<Vec<LibraryEntry>> {
        Ok(self.read_index()?.models)
    }

    /// Absolute paths of a model's files and its mmproj.
    pub fn paths(&self, entry: &LibraryEntry) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
        match &entry.location {
            Location::Referenced { files, mmproj } => Ok((files.clone(), mmproj.clone())),
            Location::Managed { files, mmproj } => {
                let folder = self.managed_dir(&entry.id)?;
                let files = files
                    .iter()
                    .map(|name| Ok(folder.join(names::file_name(name)?)))
                    .collect::<Result<Vec<_>>>()?;
                let mmproj = match mmproj {
                    Some(name) => Some(folder.join(names::file_name(name)?)),
                    None => None,
                };
                Ok((files, mmproj))
            }
        }
    }

    /// Imports a local GGUF (the first part of a split model, or a single file).
    pub fn import(&self, source: &Path, mode: ImportMode) -> Result<LibraryEntry> {
        let source = checked_source(source)?;
        let parts = split_parts(&source)?;
        let mut infos = Vec::with_capacity(parts.len());
        for part in &parts {
            let info = cria_gguf::inspect(part).map_err(|error| ModelsError::NotGguf {
                path: part.clone(),
                reason: error.to_string(),
            })?;
            infos.push(info);
        }
        let first = &infos[0];
        if first.is_mmproj() {
            return Err(ModelsError::NotGguf {
                path: source.clone(),
                reason: "this is a vision projector (mmproj); import the model it belongs to and the projector is paired automatically".to_owned(),
            });
        }
        let Some(architecture) = first.architecture.clone() else {
            return Err(ModelsError::NotGguf {
                path: source.clone(),
                reason: "it has no general.architecture key".to_owned(),
            });
        };
        let mmproj = find_mmproj(&source, first);
        let mmproj_bytes = mmproj.as_ref().map_or(0, |(_, info)| info.file_bytes);
        let display_name = first.name.clone().unwrap_or_else(|| stem_of(&source));
        let facts = facts_from_info(&display_name, &infos, mmproj_bytes);
        let size_bytes: u64 = infos.iter().map(|info| info.file_bytes).sum();

        let _guard = self.lock();
        let mut index = self.read_index()?;
        if let Some(existing) = index.models.iter().find(|entry| {
            matches!(&entry.location, Location::Referenced { files, .. } if files.first() == Some(&source))
        }) && mode == ImportMode::Reference
        {
            return Ok(existing.clone());
        }
        let id = unique_id(&index, &names::slug(&stem_of(&source)));
        let location = match mode {
            ImportMode::Reference => Location::Referenced {
                files: parts.clone(),
                mmproj: mmproj.as_ref().map(|(path, _)| path.clone()),
            },
            ImportMode::Copy => {
                let folder = self.download_dir(&id)?;
                let mut copied = Vec::new();
                let needed = size_bytes + mmproj_bytes;
                check_space(&folder, needed)?;
                for part in &parts {
                    copied.push(copy_into(part, &folder)?);
                }
                let mmproj_name = match &mmproj {
                    Some((path, _)) => Some(copy_into(path, &folder)?),
                    None => None,
                };
                Location::Managed {
                    files: copied,
                    mmproj: mmproj_name,
                }
            }
        };
        let entry = LibraryEntry {
            id,
            name: display_name,
            location,
            size_bytes,
            architecture,
            quantization: first.quantization.clone(),
            context_length: first.context_length,
            facts,
            catalog_variant: None,
        };
        index.models.push(entry.clone());
        self.write_index(&index)?;
        Ok(entry)
    }

    /// Registers a finished catalog download (files already verified in [`Self::download_dir`]).
    pub fn add_downloaded(
        &self,
        catalog: &Catalog,
        variant_id: &str,
        files: &[DownloadedFile],
    ) -> Result<LibraryEntry> {
        let variant = catalog
            .variant(variant_id)
            .ok_or_else(|| ModelsError::UnknownModel(variant_id.to_owned()))?;
        let folder = self.managed_dir(variant_id)?;
        let mmproj_name = variant
            .mmproj
            .as_ref()
            .and_then(|id| catalog.mmproj(id))
            .and_then(|mmproj| mmproj.file.file_name().ok().map(str::to_owned));
        let mut model_files = Vec::new();
        let mut mmproj = None;
        for file in files {
            let name = file
                .path
                .file_name()
                .and_then(|name| name.to_str())
                .ok_or_else(|| ModelsError::UnsafeName {
                    name: file.path.display().to_string(),
                    reason: "the downloaded file has no plain name",
                })?;
            if file.path != folder.join(names::file_name(name)?) {
                return Err(ModelsError::UnsafeName {
                    name: file.path.display().to_string(),
                    reason: "the downloaded file is not in the model's library folder",
                });
            }
            if Some(name) == mmproj_name.as_deref() {
                mmproj = Some(name.to_owned());
            } else {
                model_files.push(name.to_owned());
            }
        }
        if model_files.is_empty() {
            return Err(ModelsError::UnknownModel(variant_id.to_owned()));
        }
        // Prefer the real metadata; fall back to the catalog's estimate if it cannot be read.
        let paths: Vec<PathBuf> = model_files.iter().map(|name| folder.join(name)).collect();
        let infos: Option<Vec<ModelInfo>> = paths
            .iter()
            .map(|path| cria_gguf::inspect(path).ok())
            .collect();
        let mmproj_bytes = mmproj
            .as_ref()
            .and_then(|name| std::fs::metadata(folder.join(name)).ok())
            .map_or(0, |meta| meta.len());
        let model = catalog.model(&variant.model);
        let name = model.map_or_else(
            || variant.id.clone(),
            |model| format!("{} {}", model.name, variant.quantization),
        );
        let facts = infos
            .as_deref()
            .and_then(|infos| facts_from_info(&name, infos, mmproj_bytes))
            .or_else(|| catalog.facts(variant_id, mmproj.is_some()).ok());
        let entry = LibraryEntry {
            id: variant_id.to_owned(),
            name,
            location: Location::Managed {
                files: model_files,
                mmproj,
            },
            size_bytes: files.iter().map(|file| file.size).sum::<u64>() - mmproj_bytes,
            architecture: model.map_or_else(String::new, |model| model.architecture.clone()),
            quantization: variant.quantization.clone(),
            context_length: model.map(|model| u64::from(model.context_length)),
            facts,
            catalog_variant: Some(variant_id.to_owned()),
        };
        let _guard = self.lock();
        let mut index = self.read_index()?;
        index.models.retain(|existing| existing.id != entry.id);
        index.models.push(entry.clone());
        self.write_index(&index)?;
        Ok(entry)
    }

    /// Removes a model from the index; deletes its files only if the library manages them.
    pub fn remove(&self, id: &str) -> Result<()> {
        let _guard = self.lock();
        let mut index = self.read_index()?;
        let position = index
            .models
            .iter()
            .position(|entry| entry.id == id)
            .ok_or_else(|| ModelsError::UnknownModel(id.to_owned()))?;
        let entry = index.models.remove(position);
        self.write_index(&index)?;
        if matches!(entry.location, Location::Managed { .. }) {
            let folder = self.managed_dir(&entry.id)?;
            if folder.is_dir() {
                std::fs::remove_dir_all(&folder).map_err(|error| {
                    ModelsError::io("deleting the model's files", &folder, error)
                })?;
            }
        }
        Ok(())
    }

    /// The library with a fit verdict for `machine` on every model.
    pub fn listing(&self, machine: &Machine) -> Result<Vec<ListingRow>> {
        Ok(self
            .models()?
            .into_iter()
            .map(|entry| {
                let vision = match &entry.location {
                    Location::Referenced { mmproj, .. } => mmproj.is_some(),
                    Location::Managed { mmproj, .. } => mmproj.is_some(),
                };
                let plan = entry
                    .facts
                    .as_ref()
                    .map(|facts| planner::plan(facts, machine, ContextRequest::Largest));
                ListingRow {
                    id: entry.id,
                    name: entry.name,
                    architecture: entry.architecture,
                    size_bytes: entry.size_bytes,
                    quantization: entry.quantization,
                    context_length: entry.context_length,
                    vision,
                    verdict: plan.as_ref().map(|plan| plan.verdict),
                    verdict_reason: plan.as_ref().map_or_else(
                        || {
                            "The model's layout could not be read, so no fit estimate is available."
                                .to_owned()
                        },
                        |plan| plan.reason.clone(),
                    ),
                    planned_context: plan.as_ref().map_or(0, |plan| plan.context),
                }
            })
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves nothing half-written (the index is replaced
        // atomically), so a poisoned lock is safe to take over.
        self.write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        names::refuse_symlink(&path)?;
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index {
                    version: 1,
                    models: Vec::new(),
                });
            }
            Err(error) => return Err(ModelsError::io("reading the library index", &path, error)),
        };
        if meta.len() > MAX_INDEX_BYTES {
            return Err(ModelsError::IndexCorrupt {
                path,
                message: "it is far too large".to_owned(),
            });
        }
        let bytes = std::fs::read(&path)
            .map_err(|error| ModelsError::io("reading the library index", &path, error))?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|error| ModelsError::IndexCorrupt {
                path: path.clone(),
                message: error.to_string(),
            })?;
        for entry in &index.models {
            // A hand-edited index must not smuggle paths into managed locations.
            names::file_name(&entry.id).map_err(|_| ModelsError::IndexCorrupt {
                path: path.clone(),
                message: format!("model id {:?} is not a plain name", entry.id),
            })?;
            if let Location::Managed { files, mmproj } = &entry.location {
                for name in files.iter().chain(mmproj.iter()) {
                    names::file_name(name).map_err(|_| ModelsError::IndexCorrupt {
                        path: path.clone(),
                        message: format!("file name {name:?} is not a plain name"),
                    })?;
                }
            }
        }
        Ok(index)
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let path = self.index_path();
        let temp = self.dir.join(format!("{INDEX_FILE}.tmp"));
        names::refuse_symlink(&temp)?;
        names::refuse_symlink(&path)?;
        let bytes = serde_json::to_vec_pretty(&Index {
            version: 1,
            models: index.models.clone(),
        })
        .map_err(|error| ModelsError::IndexCorrupt {
            path: path.clone(),
            message: error.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            #[cfg(unix)]
            std::fs::File::open(&self.dir)?.sync_all()?;
            Ok(())
        };
        write().map_err(|error| {
            let _ = std::fs::remove_file(&temp);
            ModelsError::io("saving the library index", &path, error)
        })
    }
}

/// Turns `cria-gguf` summaries of all split parts into planner facts. None when the metadata
/// lacks the dimensions the planner needs.
pub fn facts_from_info(name: &str, parts: &[ModelInfo], mmproj_bytes: u64) -> Option<ModelFacts> {
    let first = parts.first()?;
    let as_u32 = |value: Option<u64>| value.and_then(|value| u32::try_from(value).ok());
    let layers = as_u32(first.block_count)?;
    let embedding = as_u32(first.embedding_length)?;
    let heads = as_u32(first.head_count)?;
    if layers == 0 || embedding == 0 || heads == 0 {
        return None;
    }
    let kv_heads = as_u32(first.head_count_kv).unwrap_or(heads).max(1);
    let weight_bytes: u64 = parts.iter().map(|part| part.tensor_bytes).sum();
    let expert_bytes: u64 = parts.iter().map(|part| part.expert_tensor_bytes).sum();
    let moe_layers = {
        let mut layers_with_experts = std::collections::BTreeSet::new();
        for tensor in parts
            .iter()
            .flat_map(|part| &part.tensors)
            .filter(|tensor| tensor.is_expert)
        {
            if let Some(layer) = tensor
                .name
                .strip_prefix("blk.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|index| index.parse::<u32>().ok())
            {
                layers_with_experts.insert(layer);
            }
        }
        u32::try_from(layers_with_experts.len()).unwrap_or(layers)
    };
    let experts = as_u32(first.expert_count).unwrap_or(0);
    let attention = match first.attention_chunk_size.or(first.sliding_window) {
        // llama.cpp: Llama 4 makes every 4th layer full attention; sliding-window models with
        // no pattern key are treated as all-windowed only by their own code, so stay safe.
        Some(window) if first.architecture.as_deref() == Some("llama4") => {
            AttentionLayout::Chunked {
                window: u32::try_from(window).unwrap_or(u32::MAX),
                full_attention_every: 4,
            }
        }
        _ => AttentionLayout::Full,
    };
    Some(ModelFacts {
        name: name.to_owned(),
        architecture: first.architecture.clone().unwrap_or_default(),
        weight_bytes: weight_bytes.max(1),
        expert_bytes,
        layers,
        moe_layers: if experts > 1 { moe_layers } else { 0 },
        embedding,
        heads,
        kv_heads,
        // The KV cache stores keys of `key_length` per head; older files lack the key and use
        // the usual embedding / heads.
        head_dim: as_u32(first.key_length).unwrap_or(embedding / heads).max(1),
        vocab: as_u32(first.vocab_size).unwrap_or(32_000),
        context_length: as_u32(first.context_length).unwrap_or(4096).max(1),
        experts,
        experts_used: as_u32(first.expert_used_count).unwrap_or(if experts > 1 { 1 } else { 0 }),
        attention,
        mmproj_bytes,
        estimated: false,
    })
}

/// The import source as a canonical regular `.gguf` file.
fn checked_source(source: &Path) -> Result<PathBuf> {
    let shown = source.display().to_string();
    if shown.contains('\0') {
        return Err(ModelsError::UnsafeName {
            name: shown,
            reason: "the path contains a NUL byte",
        });
    }
    let canonical = source
        .canonicalize()
        .map_err(|error| ModelsError::io("opening the model file", source, error))?;
    let meta = std::fs::metadata(&canonical)
        .map_err(|error| ModelsError::io("opening the model file", &canonical, error))?;
    if !meta.is_file() {
        return Err(ModelsError::NotGguf {
            path: canonical,
            reason: "it is not a regular file".to_owned(),
        });
    }
    let is_gguf = canonical
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"));
    if !is_gguf {
        return Err(ModelsError::NotGguf {
            path: canonical,
            reason: "the name does not end in .gguf".to_owned(),
        });
    }
    Ok(canonical)
}

/// All parts of a split model starting from part 1, or just `source`.
fn split_parts(source: &Path) -> Result<Vec<PathBuf>> {
    let name = source
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let Some(split) = SplitName::parse(name) else {
        return Ok(vec![source.to_path_buf()]);
    };
    if split.index != 1 {
        return Err(ModelsError::NotGguf {
            path: source.to_path_buf(),
            reason: format!(
                "this is part {} of {}; import part 1 ({})",
                split.index,
                split.count,
                split.part_name(1)
            ),
        });
    }
    let folder = source.parent().unwrap_or(Path::new("."));
    (1..=split.count)
        .map(|index| {
            let path = folder.join(split.part_name(index));
            if path.is_file() {
                Ok(path)
            } else {
                Err(ModelsError::NotGguf {
                    path: source.to_path_buf(),
                    reason: format!(
                        "split part {} is missing next to it",
                        split.part_name(index)
                    ),
                })
            }
        })
        .collect()
}

/// A projector next to `model` whose metadata says it is one and whose output width fits the
/// model; among several, one built for the same architecture wins.
fn find_mmproj(model: &Path, info: &ModelInfo) -> Option<(PathBuf, ModelInfo)> {
    let folder = model.parent()?;
    let mut candidates = Vec::new();
    for entry in std::fs::read_dir(folder)
        .ok()?
        .take(MAX_FOLDER_SCAN)
        .flatten()
    {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        if path == model || !name.ends_with(".gguf") || !name.contains("mmproj") {
            continue;
        }
        if !entry.file_type().is_ok_and(|kind| kind.is_file()) {
            continue;
        }
        let Ok(projector_info) = cria_gguf::inspect(&path) else {
            continue;
        };
        let Some(projector) = &projector_info.projector else {
            continue;
        };
        if !projector.has_vision_encoder {
            continue;
        }
        if let (Some(width), Some(embedding)) = (projector.projection_dim, info.embedding_length)
            && width != embedding
        {
            continue;
        }
        let same_family = projector.projector_type.as_deref() == info.architecture.as_deref();
        candidates.push((same_family, path, projector_info));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    candidates
        .into_iter()
        .next()
        .map(|(_, path, info)| (path, info))
}

fn stem_of(path: &Path) -> String {
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("model");
    match SplitName::parse(&format!("{name}.gguf")) {
        Some(split) => split.base,
        None => name.to_owned(),
    }
}

fn unique_id(index: &Index, base: &str) -> String {
    let taken = |id: &str| index.models.iter().any(|entry| entry.id == id);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or_else(|| base.to_owned())
}

fn check_space(folder: &Path, needed: u64) -> Result<()> {
    let available = fs4::available_space(folder)
        .map_err(|error| ModelsError::io("checking free disk space", folder, error))?;
    let needed = needed.saturating_add(crate::download::FREE_SPACE_MARGIN);
    if available < needed {
        return Err(ModelsError::InsufficientSpace {
            dir: folder.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Copies `source` into `folder` under its own (validated) name via a `.part` file.
fn copy_into(source: &Path, folder: &Path) -> Result<String> {
    let name = source
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| ModelsError::UnsafeName {
            name: source.display().to_string(),
            reason: "the file name is not valid text",
        })?;
    let destination = names::confined_path(folder, name)?;
    let part = names::confined_path(folder, &format!("{name}.part"))?;
    let copy = || -> std::io::Result<()> {
        let mut reader = std::fs::File::open(source)?;
        let mut writer = std::fs::File::create(&part)?;
        std::io::copy(&mut reader, &mut writer)?;
        writer.sync_all()?;
        std::fs::rename(&part, &destination)?;
        Ok(())
    };
    copy().map_err(|error| {
        let _ = std::fs::remove_file(&part);
        ModelsError::io("copying the model into the library", &destination, error)
    })?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cria_gguf::fixture;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn desktop() -> Machine {
        Machine {
            ram_total: 64 * GIB,
            ram_available: None,
            gpus: vec![planner::GpuDevice {
                name: "gpu".to_owned(),
                vram_total: 24 * GIB,
                vram_free: None,
                bandwidth_gbps: None,
            }],
            unified_memory: false,
            ram_bandwidth_gbps: None,
        }
    }

    /// A folder with the tiny Llama 4 model, its projector and an unrelated file.
    fn model_folder() -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        fixture::write_llama4_text_model(&folder.path().join("tiny-llama4.gguf"), 1).unwrap();
        fixture::write_llama4_mmproj(&folder.path().join("mmproj-tiny-llama4-f32.gguf"), 2)
            .unwrap();
        std::fs::write(folder.path().join("notes.txt"), "hello").unwrap();
        folder
    }

    fn tree(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(next) = stack.pop() {
            for entry in std::fs::read_dir(&next).unwrap().flatten() {
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path.clone());
                }
                out.push(path);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn import_in_place_pairs_the_projector_and_lists_a_verdict() {
        let folder = model_folder();
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        let entry = library
            .import(
                &folder.path().join("tiny-llama4.gguf"),
                ImportMode::Reference,
            )
            .unwrap();
        assert_eq!(entry.architecture, "llama4");
        let facts = entry.facts.as_ref().unwrap();
        assert_eq!((facts.experts, facts.moe_layers, facts.layers), (4, 2, 4));
        assert!(facts.expert_bytes > 0 && facts.expert_bytes < facts.weight_bytes);
        assert!(matches!(
            facts.attention,
            AttentionLayout::Chunked { window: 8192, .. }
        ));
        let (files, mmproj) = library.paths(&entry).unwrap();
        assert_eq!(files.len(), 1);
        assert!(mmproj.unwrap().ends_with("mmproj-tiny-llama4-f32.gguf"));

        // Importing the same file again does not duplicate it; the listing survives a reopen.
        library
            .import(
                &folder.path().join("tiny-llama4.gguf"),
                ImportMode::Reference,
            )
            .unwrap();
        let reopened = Library::open(library_dir.path()).unwrap();
        let rows = reopened.listing(&desktop()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].vision);
        assert_eq!(rows[0].verdict, Some(Verdict::FitsOnGpu));
        assert_eq!(rows[0].planned_context, 16384);

        // Removing a referenced model never deletes the user's file.
        reopened.remove(&entry.id).unwrap();
        assert!(folder.path().join("tiny-llama4.gguf").is_file());
        assert!(reopened.models().unwrap().is_empty());
    }

    #[test]
    fn import_by_copy_stays_inside_the_library() {
        let folder = model_folder();
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        let entry = library
            .import(&folder.path().join("tiny-llama4.gguf"), ImportMode::Copy)
            .unwrap();
        let (files, mmproj) = library.paths(&entry).unwrap();
        let root = library.dir().to_path_buf();
        assert!(files[0].starts_with(&root) && files[0].is_file());
        assert!(mmproj.unwrap().starts_with(&root));
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            std::fs::read(folder.path().join("tiny-llama4.gguf")).unwrap()
        );
        assert!(
            !tree(&root)
                .iter()
                .any(|path| path.to_string_lossy().ends_with(".part"))
        );
        library.remove(&entry.id).unwrap();
        assert!(!files[0].exists());
        assert!(folder.path().join("tiny-llama4.gguf").is_file());
    }

    #[test]
    fn bad_imports_are_refused_and_create_nothing() {
        let folder = model_folder();
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        let before = tree(library.dir());
        let outside_before = tree(folder.path());

        std::fs::write(folder.path().join("garbage.gguf"), b"not a model at all").unwrap();
        let truncated = std::fs::read(folder.path().join("tiny-llama4.gguf")).unwrap();
        std::fs::write(
            folder.path().join("cut.gguf"),
            &truncated[..truncated.len() / 2],
        )
        .unwrap();
        std::fs::create_dir(folder.path().join("dir.gguf")).unwrap();
        let cases: Vec<PathBuf> = vec![
            folder.path().join("garbage.gguf"),
            folder.path().join("cut.gguf"),
            folder.path().join("dir.gguf"),
            folder.path().join("notes.txt"),
            folder.path().join("mmproj-tiny-llama4-f32.gguf"),
            folder.path().join("missing.gguf"),
            PathBuf::from("../../../../etc/passwd"),
            PathBuf::from("/etc/passwd"),
            PathBuf::from("model\0.gguf"),
            PathBuf::from("..\\..\\x.gguf"),
        ];
        for case in &cases {
            for mode in [ImportMode::Reference, ImportMode::Copy] {
                let result = library.import(case, mode);
                assert!(result.is_err(), "{} imported", case.display());
            }
        }
        let message = library
            .import(
                &folder.path().join("mmproj-tiny-llama4-f32.gguf"),
                ImportMode::Reference,
            )
            .unwrap_err()
            .to_string();
        assert!(message.contains("projector"), "{message}");
        assert_eq!(
            tree(library.dir()),
            before,
            "nothing created in the library"
        );
        let outside_after: Vec<PathBuf> = tree(folder.path())
            .into_iter()
            .filter(|path| {
                !["garbage.gguf", "cut.gguf", "dir.gguf"]
                    .iter()
                    .any(|name| path.ends_with(name))
            })
            .collect();
        assert_eq!(
            outside_after, outside_before,
            "nothing created next to the sources"
        );
        assert!(library.models().unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_in_the_library_is_not_followed() {
        let folder = model_folder();
        let library_dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        // The copy would go to models/tiny-llama4/tiny-llama4.gguf: plant a link there.
        let target_dir = library.dir().join("models").join("tiny-llama4");
        std::fs::create_dir_all(&target_dir).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("stolen.gguf"),
            target_dir.join("tiny-llama4.gguf"),
        )
        .unwrap();
        let result = library.import(&folder.path().join("tiny-llama4.gguf"), ImportMode::Copy);
        assert!(result.is_err());
        assert!(
            tree(outside.path()).is_empty(),
            "nothing written through the link"
        );
        // A linked models folder is refused as well.
        let second = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), second.path().join("library.json")).unwrap();
        let linked = Library::open(second.path()).unwrap();
        assert!(linked.models().is_err());
    }

    #[test]
    fn a_finished_catalog_download_is_registered_with_real_metadata() {
        let catalog = Catalog::parse(
            r#"
schema = 1
[[model]]
id = "tiny"
name = "Tiny Llama 4"
architecture = "llama4"
license = "test"
license_url = "https://example.org/license"
context_length = 16384
profile = "fast"
layers = 4
embedding = 64
heads = 4
kv_heads = 2
head_dim = 16
vocab = 300
total_params = 1000000
active_params = 500000
moe = { experts = 4, experts_used = 1, shared_expert = true, moe_layers = 2, expert_params = 400000 }
[[mmproj]]
id = "tiny-mmproj"
model = "tiny"
approx_size_bytes = 1000
[mmproj.file]
url = "https://huggingface.co/o/r/resolve/main/mmproj-tiny.gguf"
sha256 = "unknown"
[[variant]]
id = "tiny-f32"
model = "tiny"
quantization = "F32"
bits = 32.0
repo = "o/r"
revision = "main"
mmproj = "tiny-mmproj"
approx_size_bytes = 1000000
[[variant.files]]
url = "https://huggingface.co/o/r/resolve/main/tiny.gguf"
sha256 = "unknown"
"#,
        )
        .unwrap();
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        let folder = library.download_dir("tiny-f32").unwrap();
        let job = catalog.download_job("tiny-f32", true).unwrap();
        assert_eq!(job.files.len(), 2);
        fixture::write_llama4_text_model(&folder.join(&job.files[0].file_name), 1).unwrap();
        fixture::write_llama4_mmproj(&folder.join(&job.files[1].file_name), 2).unwrap();
        let downloaded: Vec<DownloadedFile> = job
            .files
            .iter()
            .map(|file| DownloadedFile {
                path: folder.join(&file.file_name),
                size: std::fs::metadata(folder.join(&file.file_name))
                    .unwrap()
                    .len(),
                sha256: "0".repeat(64),
            })
            .collect();
        let entry = library
            .add_downloaded(&catalog, "tiny-f32", &downloaded)
            .unwrap();
        let facts = entry.facts.as_ref().unwrap();
        assert!(
            !facts.estimated,
            "metadata from the file wins over the catalog estimate"
        );
        assert_eq!(
            facts.weight_bytes,
            cria_gguf::inspect(&downloaded[0].path)
                .unwrap()
                .tensor_bytes
        );
        assert!(facts.mmproj_bytes > 0);
        let rows = library.listing(&desktop()).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].vision);
        assert_eq!(rows[0].quantization, "F32");
        // A file outside the model's folder is refused.
        let stray = DownloadedFile {
            path: library_dir.path().join("x.gguf"),
            size: 1,
            sha256: "0".repeat(64),
        };
        assert!(
            library
                .add_downloaded(&catalog, "tiny-f32", &[stray])
                .is_err()
        );
        library.remove("tiny-f32").unwrap();
        assert!(!folder.exists());
    }

    #[test]
    fn split_models_import_from_part_one_with_all_parts() {
        let folder = tempfile::tempdir().unwrap();
        let part = |index: u32| folder.path().join(format!("big-{index:05}-of-00002.gguf"));
        fixture::write_llama4_text_model(&part(1), 1).unwrap();
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        let missing = library
            .import(&part(1), ImportMode::Reference)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("big-00002-of-00002.gguf"), "{missing}");
        fixture::write_llama4_text_model(&part(2), 2).unwrap();
        let wrong_part = library
            .import(&part(2), ImportMode::Reference)
            .unwrap_err()
            .to_string();
        assert!(wrong_part.contains("part 1"), "{wrong_part}");
        let entry = library.import(&part(1), ImportMode::Reference).unwrap();
        let single =
            std::fs::metadata(part(1)).unwrap().len() + std::fs::metadata(part(2)).unwrap().len();
        assert_eq!(entry.size_bytes, single);
        assert_eq!(entry.id, "big");
        let (files, _) = library.paths(&entry).unwrap();
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn a_damaged_or_hostile_index_is_reported() {
        let library_dir = tempfile::tempdir().unwrap();
        let library = Library::open(library_dir.path()).unwrap();
        std::fs::write(library.dir().join("library.json"), b"{ not json").unwrap();
        assert!(matches!(
            library.models(),
            Err(ModelsError::IndexCorrupt { .. })
        ));
        let hostile = r#"{"version":1,"models":[{"id":"x","name":"x","location":{"kind":"managed","files":["../../evil.gguf"],"mmproj":null},"size_bytes":1,"architecture":"llama","quantization":"Q4","context_length":null,"facts":null}]}"#;
        std::fs::write(library.dir().join("library.json"), hostile).unwrap();
        assert!(matches!(
            library.models(),
            Err(ModelsError::IndexCorrupt { .. })
        ));
    }
}
