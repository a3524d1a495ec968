"""The endpoint a user would write first: FastAPI + pydantic + kafka-python, one blocking send each.

It is the baseline the collector is compared against, so it is written plainly, not tuned.
"""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from kafka import KafkaProducer

from schemas.envelope import SubmissionEnvelope

app = FastAPI()
producer = KafkaProducer(
    bootstrap_servers=os.environ.get("SURVEY_KAFKA_BOOTSTRAP", "127.0.0.1:9092"), acks="all"
)
TOPIC = os.environ.get("BENCH_TOPIC", "bench.naive")


@app.post("/v1/submissions", status_code=202)
def submit(sheet: SubmissionEnvelope) -> dict[str, str]:
    producer.send(
        TOPIC,
        key=sheet.submission_id.encode(),
        value=json.dumps(sheet.model_dump(mode="json")).encode(),
    ).get(timeout=10)
    return {"submission_id": sheet.submission_id, "status": "received"}
