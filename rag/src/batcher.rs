//! Batching concurrent embedding requests into one model call. ONNX Runtime does much more
//! per call with a batch than with one text, and bulk imports (one chunk per small
//! document) and questions (one short text each) arrive one text at a time from many jobs
//! at once. A dedicated thread takes a request, adds every request already waiting (up to
//! a number of texts), runs them as one call and hands each caller its vectors. Nothing
//! lingers: when one request is alone it runs at once, batches form only while the model
//! is busy, which is exactly when batching pays.

use crate::embed::{EmbedError, Embedder};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Reply = tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Request {
    texts: Vec<String>,
    reply: Reply,
}

/// A handle to a batching thread around one model session.
#[derive(Debug, Clone)]
pub struct Batcher {
    requests: Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("texts", &self.texts.len())
            .finish()
    }
}

impl Batcher {
    /// Starts the thread `name`, which owns `embedder` and runs calls of at most
    /// `max_texts` texts (a request larger than that runs alone).
    pub fn spawn(embedder: Embedder, max_texts: usize, name: &str) -> Result<Self, EmbedError> {
        Self::spawn_pool(vec![embedder], max_texts, name)
    }

    /// One thread per session in `embedders`, taking turns at the queue: whichever is free
    /// takes the next request and everything waiting behind it. With a single session the
    /// model is a serial stage; a second lets a batch start while another runs.
    pub fn spawn_pool(embedders: Vec<Embedder>, max_texts: usize, name: &str) -> Result<Self, EmbedError> {
        let (requests, rx) = channel::<Request>();
        let rx = Arc::new(Mutex::new(rx));
        for (i, embedder) in embedders.into_iter().enumerate() {
            let rx = Arc::clone(&rx);
            let thread = if i == 0 {
                name.to_owned()
            } else {
                format!("{name}-{i}")
            };
            std::thread::Builder::new()
                .name(thread)
                .spawn(move || serve(&embedder, &rx, max_texts.max(1)))
                .map_err(|e| EmbedError::Runtime(format!("cannot start the embedding thread: {e}")))?;
        }
        Ok(Self { requests })
    }

    /// Vectors of `texts`, in order, computed together with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.requests
            .send(Request { texts, reply })
            .map_err(|_| EmbedError::Runtime("the embedding thread has stopped".into()))?;
        rx.await
            .map_err(|_| EmbedError::Runtime("the embedding thread dropped the request".into()))?
    }
}

/// The next batch: blocks for one request, then takes whatever else is waiting. `None`
/// once every handle is gone.
fn next_batch(rx: &Mutex<Receiver<Request>>, max_texts: usize) -> Option<Vec<Request>> {
    // Held only while collecting, never while the model runs.
    let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = rx.recv().ok()?;
    let mut n = first.texts.len();
    let mut batch = vec![first];
    while n < max_texts {
        match rx.try_recv() {
            Ok(r) => {
                n += r.texts.len();
                batch.push(r);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

fn serve(embedder: &Embedder, rx: &Mutex<Receiver<Request>>, max_texts: usize) {
    while let Some(batch) = next_batch(rx, max_texts) {
        let all: Vec<&str> = batch
            .iter()
            .flat_map(|r| r.texts.iter().map(String::as_str))
            .collect();
        // A panic in the runtime must fail these requests, not stop the thread.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| embedder.embed(&all)))
            .unwrap_or_else(|_| Err(EmbedError::Runtime("the model crashed on this batch".into())));
        match result {
            Ok(mut vectors) => {
                // Hand out in order: each request's slice, front to back.
                for r in batch {
                    let rest = vectors.split_off(r.texts.len().min(vectors.len()));
                    let _ = r.reply.send(Ok(std::mem::replace(&mut vectors, rest)));
                }
            }
            // One bad text must not fail the others: run each request alone.
            Err(_) if batch.len() > 1 => {
                for r in batch {
                    let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
                    let alone = std::panic::catch_unwind(AssertUnwindSafe(|| embedder.embed(&texts)))
                        .unwrap_or_else(|_| {
                            Err(EmbedError::Runtime("the model crashed on this text".into()))
                        });
                    let _ = r.reply.send(alone);
                }
            }
            Err(e) => {
                for r in batch {
                    let _ = r.reply.send(Err(EmbedError::Runtime(e.to_string())));
                }
            }
        }
    }
}
