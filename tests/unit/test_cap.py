"""CAP 1.2 alerts and the Atom feed, validated against the OASIS CAP 1.2 schema."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from alerts.cap import CapReference, cap_alert, cap_identifier, cap_time, is_public
from alerts.cap_feed import ATOM_NS, CapEntry, cap_feed
from alerts.events import AlertEvent, EventKind
from alerts.templates import render_plain
from floodwatch.catalog import Station
from tests.unit.alert_samples import (
    AT,
    KHABAROVSK,
    MAINZ,
    OPERATOR_KINDS,
    RESIDENT_KINDS,
    sample_event,
    station_like,
)

SCHEMA_PATH = Path(__file__).parents[1] / "data" / "cap" / "CAP-v1.2.xsd"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = f"{{{ATOM_NS}}}"
SENDER = "floodwatch@example.org"
SENT = AT + timedelta(minutes=2)
BERLIN = ZoneInfo("Europe/Berlin")
OFFSET = re.compile(r"[+-]\d\d:\d\d$")
NO_ZONE = station_like(MAINZ, id="no-zone", timezone=None)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def earlier(station: Station = MAINZ) -> CapReference:
    """The alert an Update or Cancel refers to: the escalation published two hours before."""
    escalation = sample_event(EventKind.ESCALATION, station, at=AT - timedelta(hours=2))
    return CapReference.to(escalation, sender=SENDER, sent=AT - timedelta(hours=2))


def needs_reference(kind: EventKind) -> bool:
    return kind in (EventKind.ALL_CLEAR, EventKind.PREWARNING_WITHDRAWN)


def alert_of(
    event: AlertEvent,
    station: Station = MAINZ,
    language: str = "en",
    references: Sequence[CapReference] | None = None,
) -> etree._Element:
    """The parsed CAP alert; Cancels reference the earlier escalation unless told otherwise."""
    if references is None:
        references = [earlier(station)] if needs_reference(event.kind) else []
    document = cap_alert(
        event,
        station,
        sender=SENDER,
        sent=SENT,
        language=language,
        tz=BERLIN,
        references=references,
    )
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return etree.fromstring(document)


def text(element: etree._Element, path: str) -> str:
    found = element.find(path.replace("cap:", CAP))
    assert found is not None, path
    return found.text or ""


def test_the_schema_is_the_cap_1_2_schema(schema: etree.XMLSchema) -> None:
    root = etree.parse(str(SCHEMA_PATH)).getroot()
    assert root.get("targetNamespace") == "urn:oasis:names:tc:emergency:cap:1.2"
    alert = alert_of(sample_event(EventKind.ESCALATION))
    assert schema.validate(alert)
    text_z = etree.tostring(alert).replace(b"-00:00</sent>", b"Z</sent>")
    assert not schema.validate(etree.fromstring(text_z)), "the schema must refuse a Z"


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("kind", RESIDENT_KINDS)
@pytest.mark.parametrize("station", [MAINZ, KHABAROVSK], ids=["mainz", "khabarovsk"])
def test_every_resident_kind_is_valid_cap(
    schema: etree.XMLSchema, kind: EventKind, language: str, station: Station
) -> None:
    alert = alert_of(sample_event(kind, station), station, language)
    schema.assertValid(alert)
    assert text(alert, "cap:sent") == "2018-01-05T12:02:00-00:00"
    for element in alert.iter(f"{CAP}sent", f"{CAP}onset", f"{CAP}expires"):
        assert OFFSET.search(element.text or ""), element.tag
    assert text(alert, "cap:status") == "Actual"
    assert text(alert, "cap:scope") == "Public"
    assert text(alert, "cap:info/cap:language") == {"en": "en-GB", "ru": "ru-RU"}[language]
    assert text(alert, "cap:info/cap:area/cap:areaDesc") == (
        f"{station.names[language]} ({'river' if language == 'en' else 'р.'} "
        f"{station.river[language]})"
    )


@pytest.mark.parametrize(
    ("kind", "msg_type", "urgency", "severity", "certainty"),
    [
        (EventKind.ESCALATION, "Alert", "Immediate", "Extreme", "Observed"),
        (EventKind.DEESCALATION, "Alert", "Immediate", "Severe", "Observed"),
        (EventKind.RAPID_RISE, "Alert", "Immediate", "Severe", "Observed"),
        (EventKind.PREWARNING, "Alert", "Expected", "Extreme", "Likely"),
        (EventKind.PREWARNING_UPDATE, "Alert", "Expected", "Extreme", "Likely"),
        (EventKind.PREWARNING_WITHDRAWN, "Cancel", "Past", "Minor", "Unlikely"),
        (EventKind.ALL_CLEAR, "Cancel", "Past", "Minor", "Observed"),
    ],
)
def test_mapping_of_kinds(
    kind: EventKind, msg_type: str, urgency: str, severity: str, certainty: str
) -> None:
    alert = alert_of(sample_event(kind))
    assert text(alert, "cap:msgType") == msg_type
    assert text(alert, "cap:info/cap:urgency") == urgency
    assert text(alert, "cap:info/cap:severity") == severity
    assert text(alert, "cap:info/cap:certainty") == certainty
    assert text(alert, "cap:info/cap:category") == "Met"


def test_a_watch_rung_is_moderate() -> None:
    base = sample_event(EventKind.ESCALATION)
    assert base.threshold is not None
    watch = type(base.threshold)("w", 400, "watch", "W", {"en": "Watch level"})
    alert = alert_of(sample_event(EventKind.ESCALATION, threshold=watch))
    assert text(alert, "cap:info/cap:severity") == "Moderate"


def test_references_make_an_update_and_are_sender_identifier_sent() -> None:
    reference = earlier()
    alert = alert_of(sample_event(EventKind.PREWARNING_UPDATE), references=[reference])
    assert text(alert, "cap:msgType") == "Update"
    assert text(alert, "cap:references") == (
        "floodwatch@example.org,rhein-mainz:escalation:mark-ii:1515146400000,"
        "2018-01-05T10:00:00-00:00"
    )


def test_all_clear_cancels_every_referenced_alert(schema: etree.XMLSchema) -> None:
    first = CapReference.to(sample_event(EventKind.PREWARNING), sender=SENDER, sent=AT)
    alert = alert_of(sample_event(EventKind.ALL_CLEAR), references=[earlier(), first])
    schema.assertValid(alert)
    assert text(alert, "cap:msgType") == "Cancel"
    assert len(text(alert, "cap:references").split(" ")) == 2
    assert text(alert, "cap:info/cap:responseType") == "AllClear"
    assert alert.find(f"{CAP}info/{CAP}onset") is None


@pytest.mark.parametrize("kind", [EventKind.ALL_CLEAR, EventKind.PREWARNING_WITHDRAWN])
def test_a_cancel_without_references_is_refused(kind: EventKind) -> None:
    with pytest.raises(ValueError, match="must reference"):
        alert_of(sample_event(kind), references=[])


@pytest.mark.parametrize("kind", OPERATOR_KINDS)
def test_operator_events_never_go_to_cap(kind: EventKind) -> None:
    event = sample_event(kind)
    assert not is_public(event)
    with pytest.raises(ValueError, match="operators"):
        alert_of(event)


def test_the_description_is_the_plain_message_and_the_parameters_are_numbers() -> None:
    event = sample_event(EventKind.PREWARNING)
    alert = alert_of(event)
    assert text(alert, "cap:info/cap:description") == render_plain(event, MAINZ, "en", BERLIN)
    assert text(alert, "cap:info/cap:headline") == "Flood danger expected — Mainz (river Rhine)"
    assert text(alert, "cap:info/cap:onset") == "2018-01-05T17:00:00-00:00"  # the band's start
    assert text(alert, "cap:info/cap:expires") == "2018-01-06T22:30:00-00:00"  # latest + 24 h
    parameters = {
        text(parameter, "cap:valueName"): text(parameter, "cap:value")
        for parameter in alert.iter(f"{CAP}parameter")
    }
    assert parameters["waterLevel"] == "590"
    assert parameters["unit"] == "cm"
    assert parameters["threshold"] == "mark-ii"
    assert parameters["thresholdLevel"] == "630"
    assert parameters["expectedAt"] == "2018-01-05T18:00:00-00:00"
    assert text(alert, "cap:info/cap:area/cap:circle") == "50.0040,8.2750 10"


def test_hostile_names_are_escaped_and_control_characters_dropped(
    schema: etree.XMLSchema,
) -> None:
    name = "<script>alert(1)</script> & \x01Co"
    station = station_like(MAINZ, names={"en": name}, river={"en": "R&D"})
    event = sample_event(EventKind.ESCALATION, station)
    assert event.threshold is not None
    # The event carries its rung as copied from the catalog; parameters repeat it verbatim.
    rung = dataclasses.replace(event.threshold, short="II\x01<&>")
    document = cap_alert(
        dataclasses.replace(event, threshold=rung), station, sender=SENDER, sent=SENT, tz=BERLIN
    )
    assert b"<script>" not in document
    alert = etree.fromstring(document)
    schema.assertValid(alert)
    assert text(alert, "cap:info/cap:area/cap:areaDesc") == (
        "<script>alert(1)</script> & Co (river R&D)"
    )
    names = [text(parameter, "cap:value") for parameter in alert.iter(f"{CAP}parameter")]
    assert "II<&>" in names


def test_identifiers_keep_to_the_characters_cap_allows() -> None:
    event = sample_event(EventKind.ESCALATION, event_id="a b,c<d&e:1")
    identifier = cap_identifier(event)
    assert not re.search(r"[\s,<&]", identifier)
    assert identifier == "a%20b%2Cc%3Cd%26e:1"


@pytest.mark.parametrize("sender", ["", "two words", "a,b", "a&b"])
def test_a_malformed_sender_is_refused(sender: str) -> None:
    with pytest.raises(ValueError, match="sender"):
        cap_alert(sample_event(EventKind.ESCALATION), MAINZ, sender=sender, sent=SENT, tz=BERLIN)


def test_times_are_utc_with_a_numeric_offset() -> None:
    assert cap_time(datetime(2018, 1, 5, 19, 0, 30, 999, tzinfo=BERLIN)) == (
        "2018-01-05T18:00:30-00:00"
    )
    with pytest.raises(ValueError, match="time zone"):
        cap_time(datetime(2018, 1, 5, 18, 0))  # noqa: DTZ001 - the point of the test


def test_the_feed_carries_one_valid_alert_per_public_event(schema: etree.XMLSchema) -> None:
    entries = [
        CapEntry(sample_event(EventKind.ESCALATION), MAINZ, SENT),
        CapEntry(sample_event(EventKind.OFFLINE), MAINZ, SENT),  # left out
        CapEntry(
            sample_event(EventKind.ALL_CLEAR, KHABAROVSK),
            KHABAROVSK,
            SENT,
            (earlier(KHABAROVSK),),
        ),
    ]
    document = cap_feed(
        entries,
        sender=SENDER,
        feed_url="https://floodwatch.example.org/cap",
        updated=SENT,
        tz=BERLIN,
        alert_url=lambda identifier: f"https://floodwatch.example.org/cap/{identifier}.xml",
    )
    feed = etree.fromstring(document)
    assert feed.tag == f"{ATOM}feed"
    assert text(feed, f"{ATOM}updated") == "2018-01-05T12:02:00Z"
    found = feed.findall(f"{ATOM}entry")
    assert len(found) == 2
    for entry in found:
        content = entry.find(f"{ATOM}content")
        assert content is not None
        assert content.get("type") == "application/cap+xml"
        alerts = list(content)
        assert len(alerts) == 1
        schema.assertValid(alerts[0])
        link = entry.find(f"{ATOM}link")
        assert link is not None
        assert link.get("rel") == "alternate"
        assert text(entry, f"{ATOM}id") == link.get("href")
        assert link.get("href", "").endswith(text(alerts[0], "cap:identifier") + ".xml")
    assert [text(entry, f"{ATOM}title") for entry in found] == [
        "Flood danger — Mainz (river Rhine)",
        "All clear — Khabarovsk (river Amur)",
    ]


def test_a_feed_without_single_alert_addresses_uses_fragments() -> None:
    feed = etree.fromstring(
        cap_feed(
            [CapEntry(sample_event(EventKind.PREWARNING), MAINZ, SENT)],
            sender=SENDER,
            feed_url="https://floodwatch.example.org/cap",
            updated=datetime(2018, 1, 5, 12, 2, tzinfo=UTC),
            tz=BERLIN,
        )
    )
    entry_id = text(feed, f"{ATOM}entry/{ATOM}id")
    assert (
        entry_id
        == "https://floodwatch.example.org/cap#rhein-mainz:prewarning:mark-ii:1515153600000"
    )
    assert feed.find(f"{ATOM}entry/{ATOM}link") is None


def test_feed_texts_use_each_gauges_own_time_zone() -> None:
    entries = [
        CapEntry(sample_event(EventKind.PREWARNING), MAINZ, SENT),
        CapEntry(sample_event(EventKind.PREWARNING, KHABAROVSK), KHABAROVSK, SENT),
        CapEntry(sample_event(EventKind.PREWARNING, NO_ZONE), NO_ZONE, SENT),
    ]
    feed = etree.fromstring(
        cap_feed(
            entries,
            sender=SENDER,
            feed_url="https://floodwatch.example.org/cap",
            updated=SENT,
            tz=ZoneInfo("Europe/London"),  # the setting: only for gauges without a zone
        )
    )
    descriptions = [text(alert, "cap:info/cap:description") for alert in feed.iter(f"{CAP}alert")]
    zones = [ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Vladivostok"), ZoneInfo("Europe/London")]
    for description, entry, zone in zip(descriptions, entries, zones, strict=True):
        expected_at = entry.event.expected_at
        assert expected_at is not None
        assert expected_at.astimezone(zone).strftime("%H:%M") in description
    assert MAINZ.timezone == "Europe/Berlin"
    assert KHABAROVSK.timezone == "Asia/Vladivostok"
    assert NO_ZONE.timezone is None
