# framecast on Airflow 3 (CeleryExecutor): one image for every Airflow component.
#   DOCKER_BUILDKIT=1 docker build -t framecast:latest .
# Without a registry, build on the Debian-based stand-in (deploy/local-images.sh) and hand pip
# the machine's CA bundle as a build secret (used for that step only, never stored in a layer):
#   DOCKER_BUILDKIT=1 docker build --network host --build-arg BASE_IMAGE=framecast-local/python:3.11 \
#     --secret id=host-ca,src=/etc/ssl/certs/ca-certificates.crt -t framecast:latest .
# Build steps, in cache-friendly order: system libraries, pinned Python requirements, the
# framecast package, Natural Earth geography (preseeded here so nothing downloads at run time),
# then DAGs, plugins and deployment files (the parts that change most often).
# Pin the base image by digest for reproducible, tamper-evident builds:
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    CARTOPY_DATA_DIR=/opt/framecast/cartopy-data \
    MPLBACKEND=Agg

RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 50000 --gid 0 --home-dir /opt/airflow airflow

WORKDIR /opt/framecast/src
COPY requirements.txt ./
RUN --mount=type=secret,id=host-ca,target=/etc/ssl/certs/host-ca.crt \
    if [ -s /etc/ssl/certs/host-ca.crt ]; then export PIP_CERT=/etc/ssl/certs/host-ca.crt; fi \
 && pip install -r requirements.txt

COPY pyproject.toml ./
COPY include/ include/
RUN --mount=type=secret,id=host-ca,target=/etc/ssl/certs/host-ca.crt \
    if [ -s /etc/ssl/certs/host-ca.crt ]; then export PIP_CERT=/etc/ssl/certs/host-ca.crt; fi \
 && pip install --no-deps . && rm -rf build

# Natural Earth for exactly the shipped regions and maps (deploy/preseed_natural_earth.py
# derives the list from regions.yaml). Rebuild the image after adding a region with a new scale.
# Files staged in var/natural-earth (`deploy/preseed_natural_earth.py --from DIR --data-dir
# var/natural-earth`, for builders that cannot reach naturalearthdata.com) are used as they
# are; whatever is missing is downloaded.
COPY deploy/preseed_natural_earth.py /opt/framecast/deploy/preseed_natural_earth.py
COPY va[r]/natural-eart[h] $CARTOPY_DATA_DIR/
RUN python /opt/framecast/deploy/preseed_natural_earth.py --data-dir "$CARTOPY_DATA_DIR" \
 && python /opt/framecast/deploy/preseed_natural_earth.py --data-dir "$CARTOPY_DATA_DIR" --check

COPY dags/ /opt/framecast/dags/
COPY plugins/ /opt/framecast/plugins/
COPY deploy/ /opt/framecast/deploy/
# airflow_local_settings.py (render queue/pool policy) and the hostname callable: Airflow puts
# $AIRFLOW_HOME/config on sys.path in every component.
COPY deploy/airflow/ /opt/airflow/config/

RUN mkdir -p /opt/framecast/data /opt/framecast/publish /opt/airflow/logs /opt/airflow/auth \
 && chown -R airflow:0 /opt/framecast/data /opt/framecast/publish /opt/airflow \
 && chmod +x /opt/framecast/deploy/entrypoint.sh /opt/framecast/deploy/init.sh

USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/framecast/deploy/entrypoint.sh"]
CMD ["airflow", "version"]
