"""The form for one [[hosts]] entry, with a message under each field that is wrong.

Pure widget: no disk, no network. It holds text as typed (`HostForm`); the
checks are in `settings_fields` so the CLI refuses the same input the same way.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gpu_tray.core.host_form import HostForm

ERROR_STYLE = "color: #b00020;"

AUTH_LABELS = (
    ("", "Any: agent, then keys, then password"),
    ("agent", "SSH agent only"),
    ("key", "Key file"),
    ("password", "Password"),
)

# Field -> what the message calls it.
FIELD_LABELS = {
    "name": "Name",
    "hostname": "Hostname",
    "port": "Port",
    "user": "User",
    "auth": "Authentication",
    "identity_file": "Identity file",
    "proxy_jump": "ProxyJump",
    "nvidia_smi": "nvidia-smi path",
    "free.max_memory_mib": "Memory threshold",
    "free.max_utilization_pct": "Utilisation threshold",
}


def error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(f"error_{name}")
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.hide()
    return label


class HostEditor(QWidget):
    changed = Signal()  # any field edited

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._errors: dict[str, QLabel] = {}
        self._loading = False
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.name = self._line("name", "an alias from ~/.ssh/config, or a hostname")
        self.hostname = self._line("hostname", "from ~/.ssh/config, else the name")
        self.port = self._line("port", "from ~/.ssh/config, else 22")
        self.port.setMaximumWidth(120)
        self.user = self._line("user", "from ~/.ssh/config, else your login name")
        self.auth = QComboBox()
        self.auth.setObjectName("auth")
        for value, text in AUTH_LABELS:
            self.auth.addItem(text, value)
        self.auth.currentIndexChanged.connect(self._edited)
        self.identity_file = self._line("identity_file", "from ~/.ssh/config, else ~/.ssh/id_*")
        browse = QPushButton("Browse…")
        browse.setObjectName("browse_identity")
        browse.clicked.connect(self._browse)
        identity_row = QHBoxLayout()
        identity_row.addWidget(self.identity_file, 1)
        identity_row.addWidget(browse)
        self.proxy_jump = self._line("proxy_jump", "e.g. bastion or user@gw:2222,inner")
        self.nvidia_smi = self._line("nvidia_smi", "PATH, /usr/bin, /usr/local/nvidia/bin, …")
        self.nvidia_smi.setToolTip(
            "Where nvidia-smi is on this host, as an absolute path. Empty: it is looked "
            "for on the PATH, in /usr/bin, /usr/local/nvidia/bin and /usr/lib/wsl/lib."
        )

        form.addRow("Name:", self._with_error("name", self.name))
        form.addRow("Hostname:", self._with_error("hostname", self.hostname))
        form.addRow("Port:", self._with_error("port", self.port))
        form.addRow("User:", self._with_error("user", self.user))
        form.addRow("Authentication:", self._with_error("auth", self.auth))
        form.addRow("Identity file:", self._with_error("identity_file", identity_row))
        form.addRow("ProxyJump:", self._with_error("proxy_jump", self.proxy_jump))
        form.addRow("nvidia-smi:", self._with_error("nvidia_smi", self.nvidia_smi))

        self.own_free = QCheckBox("Own \u201cfree\u201d thresholds for this host")
        self.own_free.setObjectName("own_free")
        self.own_free.toggled.connect(self._free_toggled)
        self.max_memory = QSpinBox()
        self.max_memory.setObjectName("host_max_memory_mib")
        self.max_memory.setRange(0, 10_000_000)
        self.max_memory.setSuffix(" MiB used")
        self.max_memory.setPrefix("at most ")
        self.max_utilization = QSpinBox()
        self.max_utilization.setObjectName("host_max_utilization_pct")
        self.max_utilization.setRange(0, 100)
        self.max_utilization.setPrefix("at most ")
        self.max_utilization.setSuffix(" % busy")
        for box in (self.max_memory, self.max_utilization):
            box.valueChanged.connect(self._edited)
        free_row = QHBoxLayout()
        free_row.addWidget(self.max_memory)
        free_row.addWidget(self.max_utilization)
        free_row.addStretch(1)
        free_box = QVBoxLayout()
        free_box.addWidget(self.own_free)
        free_box.addLayout(free_row)
        free_box.addWidget(self._error("free.max_memory_mib"))
        free_box.addWidget(self._error("free.max_utilization_pct"))
        form.addRow("Free when:", free_box)
        self._free_toggled(False)

    # -- building ------------------------------------------------------------------------------

    def _line(self, name: str, placeholder: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName(name)
        edit.setPlaceholderText(placeholder)
        edit.textEdited.connect(self._edited)
        return edit

    def _error(self, name: str) -> QLabel:
        label = error_label(name)
        self._errors[name] = label
        return label

    def _with_error(self, name: str, field: QWidget | QHBoxLayout) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        if isinstance(field, QWidget):
            v.addWidget(field)
        else:
            v.addLayout(field)
        v.addWidget(self._error(name))
        return box

    # -- data ----------------------------------------------------------------------------------

    def form(self) -> HostForm:
        return HostForm(
            name=self.name.text(),
            hostname=self.hostname.text(),
            port=self.port.text(),
            user=self.user.text(),
            identity_file=self.identity_file.text(),
            proxy_jump=self.proxy_jump.text(),
            auth=self.auth.currentData() or "",
            own_free=self.own_free.isChecked(),
            max_memory_mib=self.max_memory.value(),
            max_utilization_pct=self.max_utilization.value(),
            nvidia_smi=self.nvidia_smi.text(),
        )

    def set_form(self, form: HostForm) -> None:
        self._loading = True
        try:
            self.name.setText(form.name)
            self.hostname.setText(form.hostname)
            self.port.setText(form.port)
            self.user.setText(form.user)
            self.identity_file.setText(form.identity_file)
            self.proxy_jump.setText(form.proxy_jump)
            self.nvidia_smi.setText(form.nvidia_smi)
            index = self.auth.findData(form.auth)
            self.auth.setCurrentIndex(max(index, 0))
            self.own_free.setChecked(form.own_free)
            self.max_memory.setValue(form.max_memory_mib)
            self.max_utilization.setValue(form.max_utilization_pct)
            self._free_toggled(form.own_free)
        finally:
            self._loading = False
        self.show_problems({})

    def show_problems(self, problems: dict[str, str]) -> None:
        for name, label in self._errors.items():
            problem = problems.get(name)
            if problem:
                label.setText(problem if name == "name" else f"{FIELD_LABELS[name]} {problem}")
                label.show()
            else:
                label.clear()
                label.hide()

    def problem_text(self, name: str) -> str:
        label = self._errors[name]
        return label.text() if not label.isHidden() else ""

    # -- reactions -----------------------------------------------------------------------------

    def _edited(self, *_: object) -> None:
        if not self._loading:
            self.changed.emit()

    def _free_toggled(self, on: bool) -> None:
        self.max_memory.setEnabled(on)
        self.max_utilization.setEnabled(on)
        self._edited()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Private key", self.identity_file.text() or "~/.ssh", "All files (*)"
        )
        if path:
            self.identity_file.setText(path)
            self._edited()
