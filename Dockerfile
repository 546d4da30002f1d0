# higgs for GPU users: `docker build -t higgs .` then
#   docker run --gpus all -v higgs-models:/home/higgs/.cache/huggingface -v "$PWD":/work higgs \
#       say "Hello there" -o /work/hello.wav
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 ffmpeg \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 higgs
WORKDIR /opt/higgs
COPY pyproject.toml README.md ./
COPY higgs_cli ./higgs_cli
COPY plugins ./plugins
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

USER higgs
ENV PATH=/opt/venv/bin:$PATH HF_HOME=/home/higgs/.cache/huggingface HIGGS_HOME=/home/higgs/.local/share/higgs
# Model weights and the voice library live in volumes so they survive the container.
RUN mkdir -p $HF_HOME $HIGGS_HOME
VOLUME ["/home/higgs/.cache/huggingface", "/home/higgs/.local/share/higgs"]
WORKDIR /work
ENTRYPOINT ["higgs"]
CMD ["--help"]
