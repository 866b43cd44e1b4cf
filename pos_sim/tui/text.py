"""The TUI's own words (its chrome) in zh-CN and en.

Everything about a component, a verdict, a fault or a prompt comes from the diagnostics
catalogue (``pos_sim/diagnostics/catalogue.toml``); this table holds only the words of the screen
itself: state names, the banner, the status bar, the help and the picker.
"""

from __future__ import annotations

from typing import Final

_TEXTS: Final[dict[str, tuple[str, str]]] = {
    # key: (zh-CN, en)
    "idle": ("待测", "idle"),
    "running": ("测试中", "running"),
    "not_fitted": ("未配备", "not fitted"),
    "model": ("型号", "model"),
    "serial": ("序列号", "serial"),
    "firmware": ("固件", "firmware"),
    "state": ("状态", "state"),
    "merchant": ("商户", "merchant"),
    "no_merchant": ("未绑定", "unbound"),
    "connecting": ("正在连接 {port} …", "connecting to {port} …"),
    "cannot_open": ("无法打开 {port}：{why}；每 0.5 秒重试", "cannot open {port}: {why}; retrying every 0.5 s"),
    "link_down": ("连接已断开：{why}。已完成的结果保留；正在等待同一台终端（{serial}）重新连接 …",
                  "LINK DOWN: {why}. Completed results are kept; waiting for the same terminal ({serial}) "
                  "to come back …"),
    "wrong_terminal": ("{port} 上是另一台终端（序列号 {got}），不是 {want}：结果不会混在一起；继续等待",
                       "a different terminal (serial {got}) answered on {port}, not {want}: results are not "
                       "mixed; still waiting"),
    "reconnected": ("已重新连接 {serial}", "reconnected to {serial}"),
    "frames": ("帧 收/发", "frames in/out"),
    "retransmits": ("重发", "retransmits"),
    "crc_errors": ("CRC 错误", "CRC errors"),
    "dropped": ("丢弃字节", "bytes dropped"),
    "log": ("帧日志", "frame log"),
    "paused": ("已暂停", "PAUSED"),
    "hex": ("十六进制", "HEX"),
    "filter": ("过滤", "filter"),
    "not_shown": ("… {n} 帧未显示（速率限制）", "… {n} frames not shown (rate limit)"),
    "busy": ("测试正在进行", "a run is in progress"),
    "not_connected": ("未连接终端", "no terminal connected"),
    "exported": ("报告已保存：{path}", "report written to {path}"),
    "export_failed": ("无法保存报告：{why}", "cannot write the report: {why}"),
    "nothing_to_export": ("还没有可导出的结果", "nothing to export yet"),
    "aborting": ("正在中止 …", "aborting …"),
    "keypad": ("键盘", "keypad"),
    "paper_ok": ("纸张正常", "paper ok"),
    "paper_near_end": ("纸将用完", "paper near end"),
    "paper_end": ("缺纸", "paper out"),
    "confirm_title": ("请确认", "Please confirm"),
    "yes": ("是 (y)", "Yes (y)"),
    "no": ("否 (n)", "No (n)"),
    "picker_title": ("选择端口（终端在前；emu:// 为模拟器）",
                     "Choose a port (terminals first; emu:// is the emulator)"),
    "no_ports": ("没有发现串口", "no serial ports found"),
    "run_all": ("全部测试", "Run all"),
    "abort": ("中止", "Abort"),
    "export": ("导出报告", "Export report"),
    "capture": ("抓包", "Capture"),
    "recording": ("● 抓包中", "● REC"),
    "capture_started": ("开始抓包：{path}", "capturing every byte to {path}"),
    "capture_stopped": ("抓包已保存：{path}", "capture written to {path}"),
    "capture_failed": ("无法开始抓包：{why}", "cannot start the capture: {why}"),
    "capture_no_port": ("还没有连接终端，无法抓包", "no terminal connected: nothing to capture yet"),
    "language": ("English", "中文"),
    "help": ("帮助", "Help"),
    "quit": ("退出", "Quit"),
    "toggle_log": ("日志", "Log"),
    "toggle_hex": ("十六进制", "Hex"),
    "pause": ("暂停", "Pause"),
    "help_title": ("按键", "Keys"),
}

#: the help screen's rows: key, (zh-CN, en)
HELP_ROWS: Final[tuple[tuple[str, tuple[str, str]], ...]] = (
    ("r", ("运行全部测试", "run every test (full plan)")),
    ("1-9, 0", ("运行第 N 个部件的测试（也可点击方块）", "run the Nth tile's test (or click the tile)")),
    ("a", ("中止正在运行的测试", "abort the running tests")),
    ("e", ("导出 HTML 报告到当前目录", "export an HTML report into the current directory")),
    ("c", ("开始/停止抓包（记录线路上的每个字节）", "start / stop a capture of every byte on the line")),
    ("l", ("显示/隐藏帧日志", "show / hide the frame log")),
    ("x", ("帧日志：解码 / 十六进制", "frame log: decoded / raw hex")),
    ("p", ("暂停/继续帧日志", "pause / resume the frame log")),
    ("f", ("按消息类型过滤帧日志", "filter the frame log by message type")),
    ("g", ("切换语言 中文/English", "switch language zh-CN / en")),
    ("?", ("本帮助", "this help")),
    ("ctrl+p", ("命令面板", "command palette")),
    ("q", ("退出", "quit")),
)


def ui_text(key: str, lang: str, **values: object) -> str:
    """The screen word ``key`` in ``lang`` (``zh-CN`` or ``en``), formatted with ``values``."""
    zh, en = _TEXTS[key]
    text = zh if lang == "zh-CN" else en
    return text.format(**values) if values else text


def help_text(lang: str) -> str:
    """The help screen's body."""
    i = 0 if lang == "zh-CN" else 1
    return "\n".join(f"  {key:<8} {texts[i]}" for key, texts in HELP_ROWS)
