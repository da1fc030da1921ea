//! Embeddings with ONNX Runtime: all-MiniLM-L6-v2 (384 dimensions), mean-pooled over the
//! attention mask and L2-normalized.
//!
//! The runtime library and the model come from registry packages (`scripts/up` puts them in
//! `DOCKET_MODEL_DIR`); nothing is fetched at run time. Loading takes ~0.5 s, so a process
//! loads the model once. Inference is CPU-bound: call [`Embedder::embed`] from a blocking
//! thread.

use ndarray::{Array2, ArrayViewD, Axis};
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Vector dimension of the model.
pub const DIMENSION: usize = 384;
/// Tokens the model takes (longer text is truncated; chunks are sized to fit).
pub const MAX_TOKENS: usize = 256;
/// The runtime library file inside the model directory.
pub const RUNTIME_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// The embedder could not be loaded or failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A required file is missing.
    #[error("{what} not found at {path}: run scripts/up (or set DOCKET_MODEL_DIR) to install it")]
    Missing {
        /// What.
        what: &'static str,
        /// Where it was expected.
        path: String,
    },
    /// ONNX Runtime refused to load or run.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

fn runtime(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Runtime(e.to_string())
}

/// Embedding settings.
#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// Folder with `model.onnx`, `tokenizer.json` and (by default) the runtime library.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library; `None`: [`RUNTIME_LIBRARY`] in `model_dir`.
    pub library: Option<PathBuf>,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Texts per inference call (16 is as fast as 64 with a third of the memory).
    pub batch: usize,
}

/// ONNX Runtime allows one environment per process; the first embedder creates it.
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static ENVIRONMENT_INIT: Mutex<()> = Mutex::new(());

fn environment(library: &Path) -> Result<&'static ort::environment::Environment, EmbedError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = ENVIRONMENT_INIT
        .lock()
        .map_err(|_| runtime("environment lock poisoned"))?;
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let env = ort::init_from(library)
        .map_err(runtime)?
        .with_name("docket")
        .build()
        .map_err(runtime)?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// A loaded model and tokenizer.
pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    batch: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the runtime, the model and the tokenizer; a missing file is an error naming
    /// its path.
    pub fn load(settings: &EmbedSettings) -> Result<Self, EmbedError> {
        Self::load_with(settings, settings.threads.max(1), true, false)
    }

    /// A session for single questions: one thread that does not busy-wait between runs
    /// (spinning threads take the CPU the rest of an answer needs), and a session of its
    /// own so a question never queues behind an ingestion batch. Batches keep [`Embedder::load`]:
    /// without spinning their throughput halves (measured: 19.7 → 10.3 chunks/s).
    pub fn load_interactive(settings: &EmbedSettings) -> Result<Self, EmbedError> {
        Self::load_with(settings, 1, false, true)
    }

    /// `arena`: keep ONNX Runtime's CPU arena and memory patterns. A batch session goes
    /// without: its biggest run (64 texts × 256 tokens: attention scores alone are ~200 MB a
    /// layer) would otherwise stay reserved in the process for good; a question session's
    /// runs are small and latency-bound, so it keeps them.
    fn load_with(
        settings: &EmbedSettings,
        threads: usize,
        spinning: bool,
        arena: bool,
    ) -> Result<Self, EmbedError> {
        let dir = &settings.model_dir;
        let (library, model, tok) = (
            settings
                .library
                .clone()
                .unwrap_or_else(|| dir.join(RUNTIME_LIBRARY)),
            dir.join("model.onnx"),
            dir.join("tokenizer.json"),
        );
        for (what, path) in [
            ("ONNX Runtime library", &library),
            ("embedding model", &model),
            ("tokenizer", &tok),
        ] {
            if !path.exists() {
                return Err(EmbedError::Missing {
                    what,
                    path: path.display().to_string(),
                });
            }
        }
        // Tokenizing a batch on rayon's pool saves nothing next to the model call, and the
        // pool's threads spin (sched_yield) after every batch: sampled stacks during the
        // answer benchmark showed them as a third of the process's running time on 2 cores.
        tokenizers::utils::parallelism::set_parallelism(false);
        let env = environment(&library)?;
        let mut builder = Session::builder(env)
            .map_err(runtime)?
            .with_intra_threads(threads)
            .map_err(runtime)?
            .with_intra_op_spinning(spinning)
            .map_err(runtime)?;
        if !arena {
            builder = builder
                .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
                .map_err(runtime)?
                .with_memory_pattern(false)
                .map_err(runtime)?;
        }
        let session = builder.commit_from_file(&model).map_err(runtime)?;
        let mut tokenizer = Tokenizer::from_file(&tok).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads and truncates to a fixed 128; the model takes 256.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut padding = tokenizer
            .get_padding()
            .cloned()
            .unwrap_or_else(PaddingParams::default);
        padding.strategy = PaddingStrategy::BatchLongest;
        tokenizer.with_padding(Some(padding));
        Ok(Self {
            session: Mutex::new(session),
            tokenizer,
            batch: settings.batch.max(1),
        })
    }

    /// Vectors of `texts`, in order, in batches. CPU-bound: call from a blocking thread.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    /// Tokens each text counts in the model (what embedding is metered by).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().len())
            .unwrap_or(0)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let (n, len) = (enc.len(), enc.first().map_or(0, |e| e.get_ids().len()));
        let mut ids = Array2::<i64>::zeros((n, len));
        let mut mask = Array2::<i64>::zeros((n, len));
        let mut types = Array2::<i64>::zeros((n, len));
        for (i, e) in enc.iter().enumerate() {
            for (j, ((id, m), t)) in e
                .get_ids()
                .iter()
                .zip(e.get_attention_mask())
                .zip(e.get_type_ids())
                .enumerate()
            {
                ids[[i, j]] = i64::from(*id);
                mask[[i, j]] = i64::from(*m);
                types[[i, j]] = i64::from(*t);
            }
        }
        // A panic while the session was held (in the runtime's wrapper or in ours) poisons
        // the lock; the session itself keeps no state between runs, so the next call takes
        // it anyway instead of failing every embedding for the rest of the process.
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![
                "input_ids" => TensorRef::from_array_view(&ids).map_err(runtime)?,
                "attention_mask" => TensorRef::from_array_view(&mask).map_err(runtime)?,
                "token_type_ids" => TensorRef::from_array_view(&types).map_err(runtime)?,
            ])
            .map_err(runtime)?;
        let hidden: ArrayViewD<'_, f32> = outputs["last_hidden_state"]
            .try_extract_array::<f32>()
            .map_err(runtime)?;
        Ok((0..n)
            .map(|i| {
                pool(
                    &hidden.index_axis(Axis(0), i),
                    mask.row(i).as_slice().unwrap_or(&[]),
                )
            })
            .collect())
    }
}

impl Embedder {
    /// Panics while holding the session, as a crash inside a model call would (caught
    /// here). For the test that embedding survives it; not for production use.
    #[doc(hidden)]
    pub fn crash_inside_session_for_tests(&self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = self.session.lock();
            panic!("simulated crash inside a model call");
        }));
    }
}

/// Mean over the tokens the mask keeps, then L2-normalized.
fn pool(tokens: &ArrayViewD<'_, f32>, mask: &[i64]) -> Vec<f32> {
    let mut sum = vec![0f32; DIMENSION];
    let mut kept = 0f32;
    for (t, m) in tokens.axis_iter(Axis(0)).zip(mask) {
        if *m == 0 {
            continue;
        }
        kept += 1.0;
        for (s, v) in sum.iter_mut().zip(t.iter()) {
            *s += *v;
        }
    }
    let kept = kept.max(1.0);
    sum.iter_mut().for_each(|s| *s /= kept);
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    sum.iter_mut().for_each(|s| *s /= norm);
    sum
}

/// Cosine similarity of two L2-normalized vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
