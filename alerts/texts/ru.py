"""Russian message texts."""

from __future__ import annotations

from alerts.events import EventKind as K
from alerts.texts.base import Texts

_LEVEL = "Уровень: <b>{level}</b>, {trend}."
_NOW = "Сейчас: {level}, {trend}."
_EXPECTED_BAND = "Вероятно {band}."
_INSTRUCTION = "<i>{instruction}</i>"
_LAST_LEVEL = "Последний уровень: {level}."

_MONTHS = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip

_SEVERITY = {
    "watch": "Повышенный уровень воды",
    "warning": "Высокий уровень воды",
    "danger": "Опасный уровень воды",
}


def _plural(n: int) -> int:
    """Russian plural form: 1 час, 2 часа, 5 часов (21 час, 22 часа, 11 часов)."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


TEXTS = Texts(
    code="ru",
    cap_language="ru-RU",
    lines={
        K.ESCALATION: (
            "{marker} <b>{severity}</b> — {place}",
            "Вода достигла отметки <b>{threshold}</b> ({threshold_value}).",
            _LEVEL,
            "Предыдущая отметка: {previous}.",
            _INSTRUCTION,
        ),
        K.DEESCALATION: (
            "{marker} <b>Вода спадает</b> — {place}",
            "Уровень опустился ниже отметки {previous}.",
            "Действует отметка <b>{threshold}</b> ({threshold_value}).",
            _LEVEL,
        ),
        K.ALL_CLEAR: (
            "{marker} <b>Отбой</b> — {place}",
            "Вода опустилась ниже самой низкой отметки {threshold} ({threshold_value}).",
            _LEVEL,
            _INSTRUCTION,
        ),
        K.PREWARNING: (
            "{marker} <b>{expected}</b> — {place}",
            "Вода может достичь отметки <b>{threshold}</b> ({threshold_value}) "
            "около <b>{expected_at}</b>, {eta}.",
            _EXPECTED_BAND,
            _NOW,
            _INSTRUCTION,
        ),
        K.PREWARNING_UPDATE: (
            "{marker} <b>{expected}</b> (прогноз уточнён) — {place}",
            "Теперь вода может достичь отметки <b>{threshold}</b> ({threshold_value}) "
            "около <b>{expected_at}</b>, {eta}.",
            _EXPECTED_BAND,
            _NOW,
            _INSTRUCTION,
        ),
        K.PREWARNING_WITHDRAWN: (
            "{marker} <b>Прогноз отменён</b> — {place}",
            "Вода больше не должна достичь отметки {threshold} ({threshold_value}).",
            _NOW,
            _INSTRUCTION,
        ),
        K.RAPID_RISE: (
            "{marker} <b>Быстрый подъём воды</b> — {place}",
            _LEVEL,
            "Уровень {position} ({threshold_value}).",
        ),
        K.OFFLINE: (
            "{marker} <b>Пост не на связи</b> — {gauge}",
            "С {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.ONLINE: (
            "{marker} <b>Пост снова на связи</b> — {gauge}",
            "В {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.FAULTY: (
            "{marker} <b>Недостоверные показания</b> — {gauge}",
            "С {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.UNCONFIRMED: (
            "{marker} <b>Неподтверждённый высокий уровень</b> — {gauge}",
            "Показание <b>{level}</b> в {at}.",
            "Это на уровне <b>{threshold}</b> ({threshold_value}) или выше.",
            "Перед этим {from_level} в {from_at}: {trend}.",
            "{detail}",
            "Контроль качества придерживает его до следующего показания: проверьте пост. "
            "Жители получат оповещение, как только показание подтвердится.",
        ),
        K.FAULT_CLEARED: (
            "{marker} <b>Показания снова в норме</b> — {gauge}",
            "В {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.MAINTENANCE_ON: ("{marker} <b>Пост на обслуживании</b> — {gauge}", "С {at}.", "{detail}"),
        K.MAINTENANCE_OFF: (
            "{marker} <b>Обслуживание завершено</b> — {gauge}",
            "В {at}.",
            "{detail}",
        ),
    },
    place="<b>{station}</b> (р. {river})",
    gauge="<b>{station}</b> (<code>{station_id}</code>)",
    threshold="{short} — «{name}»",
    threshold_named="«{name}»",
    severity=_SEVERITY,
    expected={key: f"Ожидается {value[0].lower()}{value[1:]}" for key, value in _SEVERITY.items()},
    events={**_SEVERITY, "rapid_rise": "Быстрый подъём воды", "flood": "Паводок"},
    trend={
        "rising_rate": "растёт на {rate} в час",
        "falling_rate": "падает на {rate} в час",
        "rising": "растёт",
        "falling": "падает",
        "steady": "без изменений",
        "unknown": "тенденция неизвестна",
    },
    position={
        "below": "на {gap} ниже отметки {threshold}",
        "above": "на {gap} выше отметки {threshold}",
    },
    units={"cm": "см", "m": "м", "ft": "фут."},
    decimal_point=",",
    months=_MONTHS,
    date="{day} {month}",
    moment="{time}, {date}",
    zoned="{moment} ({zone})",
    band="с {start} до {end}",
    band_same_day="с {start} до {end}, {date}",
    hours=("час", "часа", "часов"),
    days=("день", "дня", "дней"),
    plural=_plural,
    eta="примерно через {n} {noun}",
    eta_soon="в течение часа",
    instructions={
        "watch": "Следите за сообщениями и будьте осторожны у реки.",
        "warning": "Подготовьтесь: уберите ценные вещи, транспорт и животных из низких мест, "
        "не подходите к берегу.",
        "danger": "Держитесь подальше от реки и подтопленных мест, выполняйте указания "
        "местных властей и будьте готовы к эвакуации.",
        "all_clear": "Будьте осторожны у реки: берега и дороги могут быть повреждены.",
        "withdrawn": "Ничего делать не нужно; следите за сообщениями.",
    },
)
