# coder-reconciler: `reconciler watch` on a mounted manifest folder.
#   docker build -t coder-reconciler .
#   docker run --rm -v "$PWD/sessions:/manifests:ro" \
#     -e CODER_API_URL -e AGENTUITY_SDK_KEY coder-reconciler
# docs/how-to/kubernetes.md shows Kubernetes, one reconciler per Project.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The tool, from this source tree (nothing from a package index but its dependencies).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler/ reconciler/
RUN pip install --no-cache-dir . \
    && rm -rf /src

# Never root. The embedded hub (CODER_API_URL=local, for trying it out) keeps its
# database under the home directory.
RUN useradd --create-home --no-log-init --uid 10001 --user-group reconciler
USER 10001:10001
WORKDIR /home/reconciler

CMD ["reconciler", "watch", "/manifests"]
