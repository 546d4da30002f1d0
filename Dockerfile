# higgs in a container: `higgs serve` for a team, or any other command. Build and run (docs/server.md):
#   docker build -t higgs .
#   docker run --gpus all -p 8000:8000 -e HIGGS_API_KEY="$(cat key.txt)" \
#       -v higgs-models:/home/higgs/.cache/huggingface -v higgs-voices:/home/higgs/.local/share/higgs higgs
# One-off commands: docker run --rm -v "$PWD":/work higgs say "Hello there" -o /work/hello.wav
#
# No CUDA base image: PyPI's torch wheel brings its own CUDA libraries (CUDA 13.0 for torch 2.11: the
# host's NVIDIA driver must be 580 or newer). A CUDA base image of another version would only add
# unused libraries and let a mismatch fall back to the CPU without a word. tests/architecture/
# test_dockerfile.py checks that this stays true.
FROM ubuntu:24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# tini is PID 1: it forwards SIGTERM to higgs (which drains) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 higgs
WORKDIR /opt/higgs
COPY pyproject.toml README.md ./
COPY higgs_cli ./higgs_cli
COPY plugins ./plugins
# The [ray,s3] extras: render on a Ray cluster, projects and caches on object storage.
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install ".[ray,s3]"

USER higgs
ENV PATH=/opt/venv/bin:$PATH HF_HOME=/home/higgs/.cache/huggingface HIGGS_HOME=/home/higgs/.local/share/higgs
# Model weights and the voice library live in volumes so they survive the container.
RUN mkdir -p $HF_HOME $HIGGS_HOME
VOLUME ["/home/higgs/.cache/huggingface", "/home/higgs/.local/share/higgs"]
WORKDIR /work
EXPOSE 8000
# The health check asks the server's /health with the Python the image already has (no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
ENTRYPOINT ["/usr/bin/tini", "--", "higgs"]
# Listening on every interface is safe only with a key: serve refuses 0.0.0.0 unless $HIGGS_API_KEY is set.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
