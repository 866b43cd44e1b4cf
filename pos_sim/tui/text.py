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
    "restarted": ("终端重新启动了（{how}）：已完成的结果保留，当时正在进行的检测已丢失；正在重新握手 …",
                  "TERMINAL RESTARTED ({how}): completed results are kept, the checks that were running are "
                  "lost; saying HELLO again …"),
    "restarted_ready": ("终端重新启动过（{how}），{serial} 已重新握手：丢失的检测请再运行一次（r）",
                        "the terminal restarted ({how}); {serial} said HELLO again: run the lost checks again (r)"),
    "restarted_away": ("{serial} 在断开期间重新启动过", "{serial} restarted while it was disconnected"),
    "restarting": ("终端刚重新启动，正在重新握手，请稍候", "the terminal has just restarted: saying HELLO again, "
                   "wait a moment"),
    "how_uptime": ("运行时间倒退了", "its uptime went back"),
    "how_boot_id": ("启动编号变了", "its boot id changed"),
    "how_not_permitted": ("它已不认识本次会话", "it no longer knew the session"),
    "worker_failed": ("{what}意外中断：{why}。请重试；仍然出错请报告此问题",
                      "{what} stopped on an unexpected error: {why}. Try again; if it happens again, report it"),
    "task_connect": ("连接终端", "connecting"),
    "task_run": ("测试", "the run"),
    "task_abort": ("中止", "abort"),
    "task_rehello": ("重新握手", "saying HELLO again"),
    "task_other": ("后台任务", "a background task"),
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
    # the device screen (pos_sim/tui/device_screen.py)
    "device": ("设备", "Device"),
    "device_title": ("设备 {serial}", "Device {serial}"),
    "registry_line": ("登记：首次 {first}，最近 {last}", "registry: first seen {first}, last seen {last}"),
    "not_registered": ("登记：尚无此终端的记录", "registry: no record of this terminal yet"),
    "loading": ("正在读取 …", "loading …"),
    "device_link_down": ("未连接终端：显示的是登记记录；生命周期操作需要终端在线",
                         "NO TERMINAL CONNECTED: showing the registry's record; lifecycle actions need the "
                         "terminal"),
    "tab_runs": ("诊断记录 ({n})", "History ({n})"),
    "tab_tickets": ("维修单 ({n})", "Tickets ({n})"),
    "tab_backups": ("备份 ({n})", "Backups ({n})"),
    "tab_lifecycle": ("生命周期 ({n})", "Lifecycle ({n})"),
    "col_date": ("日期", "date"),
    "col_plan": ("方案", "plan"),
    "col_verdict": ("结论", "verdict"),
    "col_failing": ("故障部件", "failing components"),
    "col_state": ("状态", "state"),
    "col_fault": ("故障", "fault"),
    "col_last_step": ("最近一步", "last step"),
    "col_missing": ("缺少材料", "missing materials"),
    "col_records": ("交易数", "records"),
    "col_digest": ("SHA-256", "sha256"),
    "col_file": ("文件", "file"),
    "col_op": ("操作", "operation"),
    "col_status": ("结果", "status"),
    "col_states": ("状态变化", "state"),
    "col_counter": ("计数", "counter"),
    "col_forced": ("强制", "forced"),
    "col_by": ("操作人", "by"),
    "col_reason": ("原因", "reason"),
    "none": ("无", "none"),
    "forced_yes": ("是", "yes"),
    "refresh": ("刷新", "Refresh"),
    "back": ("返回", "Back"),
    "op_backup": ("备份交易", "Backup"),
    "op_activate": ("激活", "Activate"),
    "op_bind": ("绑定", "Bind"),
    "op_unbind": ("解绑", "Unbind"),
    "op_revoke": ("撤销", "Revoke"),
    "op_reset": ("恢复出厂", "Reset"),
    "op_busy": ("{op} 正在进行，请等待其完成", "{op} is in progress: wait for it to finish"),
    "op_preparing": ("{op}：正在检查并签名 …", "{op}: checking and signing …"),
    "op_sending": ("{op}：正在发送 …", "{op}: sending …"),
    "op_cancelled": ("{op}：未确认，未发送任何请求", "{op}: not confirmed: nothing was sent"),
    "op_done": ("{serial}：{op} 完成，{before} → {after}（计数 {counter}）；"
                "已记入登记库（生命周期记录 #{record}）和审计日志",
                "{serial}: {op} done, {before} → {after} (counter {counter}); recorded in the registry "
                "(lifecycle record #{record}) and the audit log"),
    "op_done_backup": ("交易日志备份：{path}", "transaction log backed up in {path}"),
    "op_done_forced": ("未经验证备份即解绑（强制），原因已记入审计日志",
                       "unbound WITHOUT a verified backup (forced); the reason is in the audit log"),
    "backup_hint": ("在本屏按 b 备份，或勾选“强制”（需原因，记入审计）",
                    "on this screen: press b to back up, or tick force (needs the reason; audited)"),
    "backup_running": ("正在备份 {serial} 的交易日志 …", "backing up the transaction log of {serial} …"),
    "backup_done": ("{serial}：{records} 笔交易，{pages} 页 → {path}；sha256 {digest}… 已验证；登记为备份 #{record}",
                    "{serial}: {records} transactions in {pages} pages → {path}; sha256 {digest}… verified; "
                    "recorded as backup #{record}"),
    "backup_not_recorded": ("{why}（未登记任何备份）", "{why} (no backup was recorded)"),
    "backup_unrecorded": ("备份文件已写入，但无法登记：{why}", "the backup file was written but could not be recorded: "
                          "{why}"),
    "backup_bad_dir": ("无法使用目录 {path}：{why}", "cannot use the directory {path}: {why}"),
    "backup_title": ("备份 {serial} 的交易日志", "Back up the transaction log of {serial}"),
    "backup_body": ("逐页校验、核对 SHA-256、原子写入（卡号已遮盖），读回验证后登记。保存到目录：",
                    "Every page CRC-checked, the SHA-256 verified, written atomically with card numbers "
                    "masked, read back and recorded. Into the directory:"),
    "start": ("开始", "Start"),
    "next": ("下一步", "Next"),
    "cancel": ("取消 (Esc)", "Cancel (Esc)"),
    "confirm": ("确认", "Confirm"),
    "field_code": ("激活码", "activation code"),
    "field_merchant": ("商户号", "merchant number"),
    "field_reason": ("原因（记入审计日志）", "reason (kept in the audit log)"),
    "field_force": ("无验证备份也解绑（强制；需原因，记入审计）",
                    "unbind without a verified backup (force; needs the reason; audited)"),
    "field_required": ("请填写：{field}", "fill in: {field}"),
    "form_title": ("{op} {serial}", "{op} {serial}"),
    "registry_error": ("登记库：{why}", "registry: {why}"),
    "op_crashed": ("操作意外中断（程序错误，详见日志）；请用 pos-sim info 查看终端状态",
                   "the operation stopped on an unexpected error (a bug; see the log): "
                   "check the terminal with pos-sim info"),
    "ask_activate": ("激活 {serial}，商户 {merchant}，激活码 {code}？当前 {state}，之后为 activated。",
                     "Activate {serial} for merchant {merchant} with activation code {code}? It is {state} now "
                     "and will be activated."),
    "ask_bind": ("将 {serial} 绑定到商户 {merchant}？当前 {state}，之后为 bound。",
                 "Bind {serial} to merchant {merchant}? It is {state} now and will be bound."),
    "ask_unbind": ("将 {serial} 从商户 {merchant} 解绑？当前 {state}，之后为 unactivated。",
                   "Unbind {serial} from merchant {merchant}? It is {state} now and will be unactivated."),
    "ask_revoke": ("撤销 {serial}？当前 {state}，之后为 revoked。",
                   "Revoke {serial}? It is {state} now and will be revoked."),
    "ask_reset": ("将 {serial} 恢复出厂设置？配置和商户 {merchant} 的绑定将被清除（日志、密钥和计数保留），"
                  "之后为 unactivated。",
                  "Factory reset {serial}? Its configuration and its binding to merchant {merchant} are erased "
                  "(logs, key and counter survive); it will be unactivated."),
    "ask_backup_ok": ("交易日志已备份：{path}（备份 #{record}，{date}）。",
                      "Its transaction log is backed up in {path} (backup #{record}, {date})."),
    "ask_forced": ("没有经过验证的交易日志备份：强制执行，原因记入审计日志。",
                   "There is NO verified backup of its transaction log: forced, and the reason goes into the "
                   "audit log."),
    "ask_reason": ("原因：{reason}", "Reason: {reason}"),
    "ask_final": ("此操作无法撤销。", "This cannot be undone."),
    "ask_type_serial": ("输入序列号 {serial} 以确认：", "Type the serial number {serial} to confirm:"),
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
    ("d", ("设备页：诊断记录、维修单、备份、生命周期操作",
           "device screen: history, tickets, backups, lifecycle actions")),
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
