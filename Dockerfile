# coder-reconciler: `reconciler watch` on a mounted manifest folder.
#   docker build -t coder-reconciler .
#   docker run --rm -v "$PWD/sessions:/manifests:ro" \
#     -e CODER_API_URL -e AGENTUITY_SDK_KEY coder-reconciler
# docs/how-to/kubernetes.md shows Kubernetes, one reconciler per Project.
# Pinned by version: the tag names one Python release on one Debian release. (Its digest
# is not pinned: it cannot be learnt without the registry; add `@sha256:...` from
# `docker buildx imagetools inspect python:3.12.8-slim-bookworm` where you build.)
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The dependencies exactly as requirements.lock pins them (hashes required), then the tool
# from this source tree with nothing more resolved.
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY reconciler/ reconciler/
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf /src

# Never root. The embedded hub (CODER_API_URL=local, for trying it out) keeps its
# database under the home directory.
RUN useradd --create-home --no-log-init --uid 10001 --user-group reconciler
USER 10001:10001
WORKDIR /home/reconciler

# The watch server (/metrics, /healthz, the status page), which the health check asks:
# on every interface of the container (published only with `-p 9090:9090`), as
# docs/how-to/kubernetes.md runs it.
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9090/healthz', timeout=4).status == 200 else 1)"]

CMD ["reconciler", "watch", "/manifests", "--metrics-port", "9090", "--metrics-host", "0.0.0.0"]
