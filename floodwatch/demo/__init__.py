"""`floodwatch demo`: the whole product on one machine with no servers.

An in-process MQTT broker (amqtt), the embedded SQLite readings store and a fresh state
file in the report folder; the real collector, forecaster and alert engine, wired as
`floodwatch run` wires them (floodwatch.wiring), and the Telegram bot with a token;
simulated gauges play a synthetic flood wave down the Silverbrook (or a replay CSV) much
faster than real time; every resident message is printed as residents read it, each
alert with how early its pre-warning came; at the end a report folder.

**Time.** Hours of gauge time pass in seconds, and the forecaster and the alert engine
ask "what time is it?" (issue times, history windows, learning periods, offline checks).
Two ways were possible:

* play the data with timestamps rebased so that they end at the wall clock's "now" and
  let everything read the wall clock. Then, during the play, every reading is hours or
  days old: forecasts would be issued "now" from stale readings (and refuse, as they
  should: "insufficient data"), and pre-warnings would be judged against the wrong now;
* give the forecaster and the alert engine an injectable clock (`clock=` on Forecaster,
  AlertEngine, AlertComponent; `utc_now` by default), and drive it here: it shows the
  gauge time of the step being played (SimClock).

The demo does the second, and still places the data so that it ends at the wall-clock
time the demo starts: the collector (which has no clock parameter: it checks readings
against the time they are received, as it must for real gauges) then accepts every
reading as recent. The player advances in lock-step (see player.py): each simulated step
waits until the services have taken it, so the forecaster's pass runs in simulated time
(every 15 simulated minutes; its wall-time scheduler and prompt runs are off, since 2
debounce seconds would be hours of gauge time here) and relearning happens every
simulated FLOODWATCH_FORECAST_RELEARN_H. Before the play, the store is seeded with six
weeks of earlier history (a few smaller freshets), and the models are learned from it,
so the routing models know the travel times when the flood comes.

Telegram delivery keeps the wall clock: its rate limits are Telegram's, in real seconds.
"""

from __future__ import annotations

from floodwatch.demo.run import run_demo

__all__ = ["run_demo"]
