"""The portal's words in Chinese (default) and English; pages take ``?lang=en``."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

TEXT = {
    "zh": {
        "portal": "催收行业监管统计门户",
        "periods": "统计期",
        "period": "统计期",
        "version": "版本",
        "release_status": "发布状态",
        "tables": "数据表",
        "table": "数据表",
        "scope": "范围",
        "downloads": "下载",
        "rows": "行数",
        "bytes": "字节",
        "preview": "预览",
        "preview_note": "前 {n} 行；下载文件为已发布、可用 SHA-256 校验的原文件。",
        "bulletin": "月度简报",
        "figures": "主要指标",
        "charts": "图表",
        "suppressed_note": "公开数据经披露控制，被抑制的单元格不在图中显示。",
        "no_periods": "您的权限范围内暂无发布。",
        "login": "登录",
        "logout": "退出",
        "token": "访问令牌",
        "signed_in_as": "当前身份",
        "submissions": "我的报送",
        "submission": "报送",
        "status": "状态",
        "received_at": "接收时间",
        "report": "校验报告",
        "upload_hint": "上传报送文件：POST /api/submissions?name=<文件名>"
        "（请求体为文件内容，Authorization: Bearer <令牌>）。",
        "error": "错误",
        "other_language": "English",
    },
    "en": {
        "portal": "Debt-collection supervision statistics portal",
        "periods": "Periods",
        "period": "Period",
        "version": "Version",
        "release_status": "Release status",
        "tables": "Tables",
        "table": "Table",
        "scope": "Scope",
        "downloads": "Downloads",
        "rows": "Rows",
        "bytes": "Bytes",
        "preview": "Preview",
        "preview_note": "First {n} rows; downloads are the published files, verifiable by SHA-256.",
        "bulletin": "Monthly bulletin",
        "figures": "Key figures",
        "charts": "Charts",
        "suppressed_note": "Public data are disclosure-controlled; "
        "suppressed cells are not charted.",
        "no_periods": "Nothing is published for your scope yet.",
        "login": "Sign in",
        "logout": "Sign out",
        "token": "Access token",
        "signed_in_as": "Signed in as",
        "submissions": "My submissions",
        "submission": "Submission",
        "status": "Status",
        "received_at": "Received at",
        "report": "Edit report",
        "upload_hint": "Upload a submission: POST /api/submissions?name=<file name> "
        "with the file as the body and Authorization: Bearer <token>.",
        "error": "Error",
        "other_language": "中文",
    },
}


def language(requested: str | None) -> str:
    return requested if requested in LANGUAGES else "zh"
