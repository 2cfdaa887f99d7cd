"""A marathon's worth of questions and moderation for the report's tests and screenshots:
rows written straight into the database with the times a real event would have had
(the services stamp their own time), from a fixed seed."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from qa_service.db.models import ModerationAction, Question, utcnow
from qa_service.services.context import Context

MODERATORS = ("anna.k", "boris", "chen.li")
TEXTS = {
    "en": ["How will the new tariffs change your export plans?", "What is the payback time of a digital twin?"],
    "ru": ["Когда завод выйдет на полную мощность?", "Сколько стоит перевод печей на водород?"],
    "id": ["Berapa kapasitas smelter baru tahun depan?", "Bagaimana dampaknya bagi pekerja lokal?"],
    "zh": ["机器人改造需要多长时间收回成本？", "你们如何培训工人？"],
    "uz": ["Paxta eksporti qanday oʻzgaradi?", "Yangi fabrikalar qayerda quriladi?"],
    "ar": ["ما هي الحوافز المقدمة للمستثمرين الأجانب؟", "كم تستغرق إجراءات التخليص في الميناء؟"],
    "de": ["Wie teuer ist ein digitaler Zwilling für einen Mittelständler?", "Welche Sensoren nutzen Sie?"],
    "fr": ["Quel est le coût de l'acier bas carbone ?", "Quand la nouvelle aciérie ouvrira-t-elle ?"],
    "es": ["¿Cuánta agua usa la mina por tonelada?", "¿Qué pasa con las comunidades locales?"],
}
# Each studio's audience: (language, country) pairs and how often.
AUDIENCE = {
    "moscow": [("ru", "RU", 6), ("en", "GB", 2), ("uz", "UZ", 1)],
    "jakarta": [("id", "ID", 5), ("en", "SG", 1)],
    "shanghai": [("zh", "CN", 5), ("en", "US", 1)],
    "tashkent": [("uz", "UZ", 4), ("ru", "KZ", 2)],
    "cairo": [("ar", "EG", 4), ("ar", "SA", 2), ("en", "AE", 1)],
    "berlin": [("de", "DE", 4), ("de", "AT", 1), ("en", "NL", 1)],
    "paris": [("fr", "FR", 4), ("fr", "BE", 1)],
    "lima": [("es", "PE", 3)],
    "buenos-aires": [("es", "AR", 3), ("es", None, 1)],
}
STUDIO_WEIGHT = {"moscow": 8, "jakarta": 4, "shanghai": 5, "tashkent": 2, "cairo": 4, "berlin": 4, "paris": 3}
XSS = "<img src=x onerror=\"document.title='pwned'\">Is this <b>bold</b>?"


def populate(ctx: Context, event_id: int, sample: dict[str, Any], *, n: int = 240, hours: float = 3.0) -> None:
    """``n`` questions over the last ``hours`` (more in the second hour), each taken as far
    through approve → queue → on air → answered as a real marathon would, by three
    moderators and the studios' host displays; the audience votes for the approved ones."""
    rng = random.Random(14)
    now = utcnow()
    start = now - timedelta(hours=hours)
    slugs = [s for s in sample["studios"] if s in sample["speakers"]]
    weights = [STUDIO_WEIGHT.get(s, 2) for s in slugs]
    with ctx.transaction() as (db, _):
        taken = set(
            db.exec(select(Question.studio_id).where(Question.event_id == event_id, Question.status == "on_air"))
        )
        # One question on air per studio (a database invariant): not where one already is.
        on_air = {slug for slug, studio in sample["studios"].items() if studio.id in taken}

        def act(q: Question, actor: str, action: str, at: datetime) -> None:
            db.add(ModerationAction(event_id=event_id, question_id=q.id, actor=actor, action=action, created_at=at))

        for i in range(n):
            slug = rng.choices(slugs, weights)[0]
            studio = sample["studios"][slug]
            speaker = rng.choice(sample["speakers"][slug])
            pairs = AUDIENCE.get(slug, [("en", None, 1)])
            language, country, _w = rng.choices(pairs, [p[2] for p in pairs])[0]
            asked = start + timedelta(hours=hours * min(rng.betavariate(2.2, 2.0), 0.999))
            text = XSS if i == 7 else rng.choice(TEXTS[language])
            q = Question(
                event_id=event_id,
                speaker_id=speaker.id,
                segment_id=speaker.segment_id,
                studio_id=studio.id,
                viewer_id=uuid.uuid4().hex,
                client_id=uuid.uuid4().hex,
                text=text,
                language=language,
                country=country,
                status="pending",
                created_at=asked,
                updated_at=asked,
            )
            db.add(q)
            db.flush()
            moderator = rng.choice(MODERATORS)
            roll = rng.random()
            decided = asked + timedelta(minutes=rng.uniform(0.3, 6))
            if decided > now or roll < 0.08:
                continue  # still pending
            if roll < 0.22:
                q.status, q.reject_reason = "rejected", rng.choice(["off_topic", "duplicate", "inappropriate"])
                act(q, moderator, "reject", decided)
                continue
            if roll < 0.30:
                q.status = "merged"
                act(q, moderator, "merge", decided)
                continue
            act(q, moderator, "approve", decided)
            act(q, moderator, "enqueue", decided)
            q.status, q.votes = "queued", int(rng.paretovariate(1.3)) - 1 + (40 if i == 3 else 0)
            aired = decided + timedelta(minutes=rng.lognormvariate(2.3, 0.7))
            if aired > now or roll < 0.45:
                continue
            host = f"host:{slug}"
            act(q, rng.choice([host, moderator]), "on_air", aired)
            answered = aired + timedelta(minutes=rng.uniform(1, 6))
            if answered > now and slug not in on_air:
                q.status = "on_air"
                on_air.add(slug)
                continue
            q.status = "answered"
            act(q, host, "answer", min(answered, now))
