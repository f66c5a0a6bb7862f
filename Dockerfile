# Hotline 镜像：API（hotline serve）、调度进程（hotline scheduler）和迁移（hotline db upgrade）共用这一个镜像。
# 构建：docker build -t hotline .      多进程部署见 docker-compose.yml 与 README「扩容」一节。

# ---- builder: a venv with Hotline installed as a regular (non-editable) package, no dev extras ----
FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/hotline

# The shipped model refuses to load under another minor version of the libraries it was trained with
# (classifier/artifact.py _PINNED), so pin those to the versions recorded in its card instead of taking
# whatever is newest on the day the image is built.
COPY models/street/card.json /tmp/model-card.json
RUN python -c "import json; libs = json.load(open('/tmp/model-card.json'))['libraries']; \
print('\n'.join(f'{name}=={libs[name]}' for name in ('scikit-learn', 'numpy', 'scipy')))" \
    > /tmp/model-constraints.txt \
 && cat /tmp/model-constraints.txt

WORKDIR /src
COPY pyproject.toml README.md ./
COPY classifier/ classifier/
COPY service/ service/
RUN /opt/hotline/bin/pip install --constraint /tmp/model-constraints.txt . \
 && /opt/hotline/bin/hotline --help > /dev/null

# ---- final: the venv, the rules file and the model; nothing else from the source tree ----
FROM python:3.11-slim-bookworm

# Fixed numeric ids so volume ownership and Kubernetes runAsNonRoot checks do not depend on the image's /etc/passwd.
RUN groupadd --system --gid 10001 hotline \
 && useradd --system --uid 10001 --gid hotline --home-dir /app --no-create-home --shell /usr/sbin/nologin hotline \
 && mkdir -p /app/var/photos \
 && chown -R hotline:hotline /app/var

COPY --from=builder /opt/hotline /opt/hotline
# Owned by root and read-only for the service user: the running service must not be able to alter its own rules or model.
COPY rules.yaml /app/rules.yaml
COPY models/street/ /app/models/street/
# the district profile: HOTLINE_RULES=/app/district-rules.yaml HOTLINE_MODEL=/app/models/district
COPY examples/district-rules.yaml /app/district-rules.yaml
COPY models/district/ /app/models/district/

# Settings resolve relative paths against the working directory, so give the image absolute ones.
# HOTLINE_SCHEDULER=0: several API containers run side by side; the jobs run in the one `hotline scheduler` container.
# The SQLite default is only for a single `docker run`; docker-compose.yml points every container at PostgreSQL.
ENV PATH=/opt/hotline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOTLINE_RULES=/app/rules.yaml \
    HOTLINE_MODEL=/app/models/street \
    HOTLINE_DATABASE_URL=sqlite:////app/var/hotline.db \
    HOTLINE_SCHEDULER=0

WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Liveness only (no curl in the slim image). The scheduler and migrate containers serve no HTTP and disable it in compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# Migrations are a separate prestart step (`hotline db upgrade`, the compose service "migrate"), never run by each API
# container: two replicas starting together must not race on the schema.
CMD ["hotline", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate"]
