from django.apps import AppConfig


class ClickHouseConfig(AppConfig):
    name = "app.clickhouse"
    label = "clickhouse"
