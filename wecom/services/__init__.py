"""The WeCom sync's verbs: library (tags both ways), contacts (customers, followers, tags),
outbox (assignments to WeCom), callbacks, chats and drift. Each is atomic where it writes; the
tasks, the callback view, the admin and ``wecom_sync`` only call these."""
