"""The bot's interface texts, Russian and English, as one table.

`t(lang, key, **values)` formats a text; an unknown language falls back to English. Texts
are Telegram HTML: values that come from users or the catalog are escaped by the callers
(`html.escape`).
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "en": "🌊 <b>Floodwatch</b> warns you when a river near you is about to flood.\n\n"
        "Subscribe to a gauge: share your location (button below), choose a river, or just "
        "type a gauge name. /my shows your subscriptions, /status a gauge's level and chart, "
        "/language changes the language, /help lists everything.",
        "ru": "🌊 <b>Floodwatch</b> предупреждает, когда река рядом с вами вот-вот выйдет из "
        "берегов.\n\nПодпишитесь на гидропост: отправьте своё местоположение (кнопка ниже), "
        "выберите реку или просто напишите название поста. /my — ваши подписки, /status — "
        "уровень и график, /language — язык, /help — все команды.",
    },
    "menu": {"en": "What would you like to do?", "ru": "Что вы хотите сделать?"},
    "btn_location": {"en": "📍 Share my location", "ru": "📍 Отправить местоположение"},
    "btn_rivers": {"en": "🌊 Choose a river", "ru": "🌊 Выбрать реку"},
    "btn_search": {"en": "🔎 Search by name", "ru": "🔎 Найти по названию"},
    "btn_my": {"en": "📋 My subscriptions", "ru": "📋 Мои подписки"},
    "btn_language": {"en": "🌐 Language", "ru": "🌐 Язык"},
    "help": {
        "en": "/start — welcome and menu\n/my — your subscriptions, unsubscribe, mute\n"
        "/status [gauge] — level, trend, thresholds, forecast and a chart\n"
        "/rivers — subscribe by river\n/language — change the language\n"
        "Send your location or a gauge name to subscribe.\n\n"
        "In a group: /subscribe_all [severity], /subscribe_river NAME [severity], /my.",
        "ru": "/start — приветствие и меню\n/my — подписки, отписка, пауза\n"
        "/status [пост] — уровень, тенденция, пороги, прогноз и график\n"
        "/rivers — подписка по реке\n/language — сменить язык\n"
        "Отправьте местоположение или название поста, чтобы подписаться.\n\n"
        "В группе: /subscribe_all [уровень], /subscribe_river РЕКА [уровень], /my.",
    },
    "choose_language": {"en": "Choose your language:", "ru": "Выберите язык:"},
    "language_set": {"en": "Language: English.", "ru": "Язык: русский."},
    "search_prompt": {
        "en": "Type a gauge or river name, e.g. <i>Mainz</i>.",
        "ru": "Напишите название поста или реки, например <i>Майнц</i>.",
    },
    "choose_river": {"en": "Choose a river:", "ru": "Выберите реку:"},
    "choose_gauge": {"en": "Gauges on the {river}:", "ru": "Посты на реке {river}:"},
    "nearest": {
        "en": "Gauges nearest to you — tap one to subscribe:",
        "ru": "Ближайшие к вам посты — нажмите, чтобы подписаться:",
    },
    "bad_location": {
        "en": "I could not read that location. Please share it again with the 📍 button.",
        "ru": "Не удалось прочитать местоположение. Отправьте его ещё раз кнопкой 📍.",
    },
    "no_gauges": {"en": "There are no gauges yet.", "ru": "Гидропостов пока нет."},
    "found": {"en": "Found — tap one to subscribe:", "ru": "Найдено — нажмите, чтобы подписаться:"},
    "not_found": {
        "en": "No gauge or river matches “{query}”. Try another name, /rivers, or share your "
        "location.",
        "ru": "Ничего не найдено по запросу «{query}». Попробуйте другое название, /rivers или "
        "отправьте местоположение.",
    },
    "too_long": {
        "en": "That message is too long for me. Send a gauge name, a location or /help.",
        "ru": "Слишком длинное сообщение. Отправьте название поста, местоположение или /help.",
    },
    "subscribed": {
        "en": "✅ Subscribed to {target}. Which alerts do you want? (now: {severity})",
        "ru": "✅ Вы подписаны: {target}. Какие предупреждения присылать? (сейчас: {severity})",
    },
    "severity_set": {
        "en": "✅ {target}: you will hear about <b>{severity}</b> and above.",
        "ru": "✅ {target}: вы будете получать уровень <b>{severity}</b> и выше.",
    },
    "sev_watch": {"en": "watch", "ru": "внимание"},
    "sev_warning": {"en": "warning", "ru": "опасность"},
    "sev_danger": {"en": "danger", "ru": "чрезвычайная опасность"},
    "btn_sev_watch": {"en": "👀 Watch and above", "ru": "👀 Внимание и выше"},
    "btn_sev_warning": {"en": "⚠️ Warning and above", "ru": "⚠️ Опасность и выше"},
    "btn_sev_danger": {"en": "🚨 Danger only", "ru": "🚨 Только чрезвычайная"},
    "river_target": {"en": "all gauges on the {river}", "ru": "все посты на реке {river}"},
    "all_target": {"en": "all gauges", "ru": "все посты"},
    "my_empty": {
        "en": "You have no subscriptions. Share your location or type a gauge name.",
        "ru": "У вас нет подписок. Отправьте местоположение или название поста.",
    },
    "my_header": {"en": "<b>Your subscriptions</b>", "ru": "<b>Ваши подписки</b>"},
    "my_muted": {"en": "🔕 Muted until {until}", "ru": "🔕 Без уведомлений до {until}"},
    "no_reading": {"en": "no reading yet", "ru": "данных пока нет"},
    "btn_unsubscribe": {"en": "✖ {name}", "ru": "✖ {name}"},
    "btn_mute": {"en": "🔕 {hours} h", "ru": "🔕 {hours} ч"},
    "btn_unmute": {"en": "🔔 Unmute", "ru": "🔔 Включить"},
    "unsubscribed": {"en": "Unsubscribed from {target}.", "ru": "Подписка отменена: {target}."},
    "not_subscribed": {"en": "That subscription is gone already.", "ru": "Этой подписки уже нет."},
    "muted": {
        "en": "🔕 Muted until {until}. Danger alerts still come through.",
        "ru": "🔕 Без уведомлений до {until}. Чрезвычайные предупреждения всё равно придут.",
    },
    "unmuted": {"en": "🔔 Notifications are on.", "ru": "🔔 Уведомления включены."},
    "status_choose": {
        "en": "Which gauge? Tap one or send /status NAME.",
        "ru": "Какой пост? Нажмите на него или отправьте /status НАЗВАНИЕ.",
    },
    "status_unknown": {
        "en": "No gauge matches “{query}”.",
        "ru": "Пост «{query}» не найден.",
    },
    "status_title": {"en": "<b>{name}</b> ({river})", "ru": "<b>{name}</b> ({river})"},
    "status_level": {
        "en": "Level: <b>{level}</b> at {time}",
        "ru": "Уровень: <b>{level}</b> на {time}",
    },
    "status_no_data": {"en": "No readings yet.", "ru": "Данных пока нет."},
    "status_trend_rising": {"en": "Trend: rising {rate}/h", "ru": "Тенденция: рост {rate}/ч"},
    "status_trend_falling": {"en": "Trend: falling {rate}/h", "ru": "Тенденция: спад {rate}/ч"},
    "status_trend_steady": {"en": "Trend: steady", "ru": "Тенденция: без изменений"},
    "status_thresholds": {"en": "Thresholds:", "ru": "Пороги:"},
    "status_no_thresholds": {
        "en": "No official thresholds for this gauge.",
        "ru": "Официальных порогов у этого поста нет.",
    },
    "status_forecast": {
        "en": "Forecast {hours} h: {level} ({low}–{high})",
        "ru": "Прогноз на {hours} ч: {level} ({low}–{high})",
    },
    "status_peak": {
        "en": "Forecast peak: {level} at {time}",
        "ru": "Прогноз пика: {level} в {time}",
    },
    "status_maintenance": {"en": "🛠 Gauge under maintenance.", "ru": "🛠 Пост на обслуживании."},
    "chart_caption": {"en": "{name}: last 3 days", "ru": "{name}: последние 3 дня"},
    "group_only": {
        "en": "This command works in group chats.",
        "ru": "Эта команда работает в групповых чатах.",
    },
    "group_usage_river": {
        "en": "Usage: /subscribe_river NAME [watch|warning|danger]",
        "ru": "Использование: /subscribe_river РЕКА [watch|warning|danger]",
    },
    "bad_severity": {
        "en": "Severity must be watch, warning or danger.",
        "ru": "Уровень: watch, warning или danger.",
    },
    "unknown_river": {"en": "No river called “{name}”.", "ru": "Реки «{name}» нет."},
    "dispatch_usage": {"en": "Usage: /dispatch on|off", "ru": "Использование: /dispatch on|off"},
    "dispatch_on": {
        "en": "This chat is now a dispatch chat: it also gets operator events (offline, faulty, "
        "maintenance).",
        "ru": "Этот чат теперь диспетчерский: он получает и служебные события (нет связи, "
        "неисправность, обслуживание).",
    },
    "dispatch_off": {
        "en": "This chat is no longer a dispatch chat.",
        "ru": "Этот чат больше не диспетчерский.",
    },
    "refused": {
        "en": "Sorry, this command is for Floodwatch hydrologists only.",
        "ru": "Извините, эта команда только для гидрологов Floodwatch.",
    },
    "admin_unavailable": {
        "en": "Threshold changes are not available right now.",
        "ru": "Изменение порогов сейчас недоступно.",
    },
    "usage_thresholds": {"en": "Usage: /thresholds GAUGE", "ru": "Использование: /thresholds ПОСТ"},
    "usage_set": {
        "en": "Usage: /set GAUGE LEVEL_KEY VALUE (VALUE “reset” restores the catalog value)",
        "ru": "Использование: /set ПОСТ КЛЮЧ_УРОВНЯ ЗНАЧЕНИЕ (“reset” — значение из каталога)",
    },
    "usage_margin": {
        "en": "Usage: /margin GAUGE VALUE",
        "ru": "Использование: /margin ПОСТ ЗНАЧЕНИЕ",
    },
    "usage_maintenance": {
        "en": "Usage: /maintenance GAUGE on|off",
        "ru": "Использование: /maintenance ПОСТ on|off",
    },
    "unknown_gauge": {"en": "Unknown gauge “{query}”.", "ru": "Неизвестный пост «{query}»."},
    "ladder": {
        "en": "<b>{name}</b> ({id}), unit {unit}",
        "ru": "<b>{name}</b> ({id}), единицы {unit}",
    },
    "ladder_margin": {"en": "Clear margin: {margin} {unit}", "ru": "Гистерезис: {margin} {unit}"},
    "ladder_maintenance": {"en": "Maintenance: {state}", "ru": "Обслуживание: {state}"},
    "changed": {"en": "✅ Changed:", "ru": "✅ Изменено:"},
    "change_failed": {"en": "❌ Not changed: {error}", "ru": "❌ Не изменено: {error}"},
    "audit_empty": {"en": "No changes recorded.", "ru": "Изменений нет."},
    "audit_header": {"en": "<b>Audit trail</b>", "ru": "<b>Журнал изменений</b>"},
    "backtest_none": {"en": "No backtest found.", "ru": "Бэктест не найден."},
    "bt_not_a_report": {
        "en": "{name}: not a Floodwatch backtest report (schema {schema}).",
        "ru": "{name}: это не отчёт бэктеста Floodwatch (схема {schema}).",
    },
    "bt_header": {
        "en": "<b>Backtest</b> {name}: {start} – {end}",
        "ru": "<b>Бэктест</b> {name}: {start} – {end}",
    },
    "bt_catalog": {
        "en": "Thresholds as in the catalog.",
        "ru": "Пороги как в каталоге.",
    },
    "bt_changes": {"en": "Tried: {changes}", "ru": "Проверено: {changes}"},
    "bt_totals": {
        "en": "{crossings} crossings on {gauges} gauges: {prewarned} pre-warned, {misses} "
        "missed; {false_alarms} false alarms; {resident_messages} messages to residents.",
        "ru": "{crossings} пересечений на {gauges} постах: {prewarned} с предупреждением, "
        "{misses} пропущено; ложных тревог: {false_alarms}; сообщений жителям: "
        "{resident_messages}.",
    },
    "bt_peak": {"en": "(peak {level} {unit})", "ru": "(пик {level} {unit})"},
    "bt_was": {"en": "(catalog {value})", "ru": "(в каталоге {value})"},
    "bt_crossed": {
        "en": "reached {at}, pre-warned {lead} ahead",
        "ru": "достигнут {at}, предупреждение за {lead}",
    },
    "bt_missed": {"en": "reached {at}, <b>missed</b>", "ru": "достигнут {at}, <b>пропущен</b>"},
    "bt_not_crossed": {"en": "not reached", "ru": "не достигнут"},
    "bt_false_alarms": {"en": "false alarms: {count}", "ru": "ложных тревог: {count}"},
    "bt_messages": {"en": "Messages to residents: {count}", "ru": "Сообщений жителям: {count}"},
    "bt_more": {
        "en": "… and {count} more gauges: see summary.json in the report folder.",
        "ru": "… и ещё постов: {count}, см. summary.json в папке отчёта.",
    },
    "bt_hours": {"en": "{value} h", "ru": "{value} ч"},
    "bt_days": {"en": "{value} d", "ru": "{value} сут"},
    "unknown_command": {
        "en": "I don't know that command. /help lists what I can do.",
        "ru": "Такой команды нет. /help — список команд.",
    },
    "stale_button": {
        "en": "This button is out of date — please start again with /start.",
        "ru": "Эта кнопка устарела — начните заново с /start.",
    },
    "edited": {
        "en": "I only read new messages — please send it again.",
        "ru": "Я читаю только новые сообщения — отправьте, пожалуйста, ещё раз.",
    },
    "unsupported": {
        "en": "I understand text, locations and commands. Try /help.",
        "ru": "Я понимаю текст, местоположение и команды. Попробуйте /help.",
    },
    "error": {
        "en": "Sorry, something went wrong. Please try again in a moment.",
        "ru": "Извините, что-то пошло не так. Попробуйте ещё раз чуть позже.",
    },
}


def language_of(code: str | None) -> str:
    """The bot language for a Telegram `language_code` (e.g. "ru-RU" → "ru"); else English."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.split("-", 1)[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def t(lang: str, key: str, **values: Any) -> str:
    row = TEXTS[key]
    text = row.get(lang) or row[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text
