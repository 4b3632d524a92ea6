# framecast on Airflow 3 (CeleryExecutor): one image for every Airflow component.
#   docker build -t framecast:latest .
# Build steps, in cache-friendly order: system libraries, pinned Python requirements, the
# framecast package, Natural Earth geography (preseeded here so nothing downloads at run time),
# then DAGs, plugins and deployment files (the parts that change most often).
# Pin the base image by digest for reproducible, tamper-evident builds:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

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
RUN pip install -r requirements.txt

COPY pyproject.toml ./
COPY include/ include/
RUN pip install --no-deps . && rm -rf build

# Natural Earth for exactly the shipped regions and maps (deploy/preseed_natural_earth.py
# derives the list from regions.yaml). Rebuild the image after adding a region with a new scale.
COPY deploy/preseed_natural_earth.py /opt/framecast/deploy/preseed_natural_earth.py
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
