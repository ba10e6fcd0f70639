"""settings_service's settings (the shared ones are enough for now)."""

from servicekit.config import ServiceSettings


class SettingsServiceSettings(ServiceSettings):
    pass
