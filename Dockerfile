# The collectwatch Airflow image: the official Airflow 3 image plus the collectwatch package at the
# exact versions of requirements.lock. docker-compose.yml builds it for every Airflow service.
# Keep the tag equal to the apache-airflow pin in requirements.lock (tests/test_compose.py).
FROM apache/airflow:3.3.2-python3.11

# Mount points for the named volumes, owned by airflow with group 0 (the official image runs
# with GID 0 under any UID): Docker seeds an empty named volume from the image's folder,
# ownership included, so the airflow user can write data and tool state.
USER root
RUN mkdir -p /opt/collectwatch/data /opt/collectwatch/state \
    && chown -R airflow:0 /opt/collectwatch \
    && chmod -R g+rwX /opt/collectwatch
USER airflow

# A regulator's pipeline does not phone home (collectwatch.config.NO_TELEMETRY_ENV).
ENV DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    GX_ANALYTICS_ENABLED=false \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    SCARF_ANALYTICS=false

ENV COLLECTWATCH_DATA_DIR=/opt/collectwatch/data \
    COLLECTWATCH_STATE_DIR=/opt/collectwatch/state

WORKDIR /opt/collectwatch
COPY --chown=airflow:0 pyproject.toml requirements.lock ./
COPY --chown=airflow:0 include/ include/

# As the airflow user, per the official image's docs; apache-airflow is named with the image's
# own version so pip can never move it. The Celery provider runs `airflow celery worker`:
# requirements.lock must pin it (and its celery/kombu/redis) like everything else.
RUN pip install --no-cache-dir -c requirements.lock \
        "apache-airflow==${AIRFLOW_VERSION}" \
        apache-airflow-providers-celery \
        .

# Set after the install, so pip sees only the installed distribution. At run time the package is
# imported from the project tree rather than site-packages: collectwatch.config.PROJECT_ROOT is
# then /opt/collectwatch and finds dbt_project/ and expectations/ beside include/
# (docker-compose.yml mounts the repository's copies over these).
ENV PYTHONPATH=/opt/collectwatch/include

# The DAGs and the dbt and GX projects ship in the image too (a Kubernetes executor pod has no
# bind mounts); docker-compose.yml mounts the working copies over them.
COPY --chown=airflow:0 dbt_project/ dbt_project/
COPY --chown=airflow:0 expectations/ expectations/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/

WORKDIR /opt/airflow
