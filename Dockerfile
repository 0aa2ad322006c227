FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY forcebot ./forcebot
COPY shared ./shared
COPY worker ./worker
COPY web ./web
COPY simulator ./simulator
COPY packages ./packages
RUN pip install --no-cache-dir -e . && useradd --create-home forcebot && mkdir -p /data && chown forcebot /data
USER forcebot
ENV FORCEBOT_INSTANCE_DIR=/data
EXPOSE 5000
CMD ["forcebot", "web", "--host", "0.0.0.0", "--port", "5000"]
