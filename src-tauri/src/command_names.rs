//! The names of every command the webview may call. `build.rs` turns each into a permission;
//! `tests::every_command_is_registered_and_granted` checks the list against the handler and the
//! capability file, so a command cannot be added without deciding who may call it.

pub const COMMANDS: &[&str] = &[
    "list_conversations",
    "get_conversation_messages",
    "send_message",
    "stop_reply",
    "regenerate",
    "edit_message",
    "continue_reply",
    "switch_branch",
    "get_conversation_view",
    "get_attachment_thumbnail",
    "get_page_preview",
    "get_chat_settings",
    "set_chat_settings",
    "pin_conversation",
    "list_models",
    "import_model",
    "select_model",
    "remove_model",
    "get_loaded_model",
    "rename_conversation",
    "set_conversation_pinned",
    "set_conversation_archived",
    "delete_conversation",
    "search",
    "export_conversation",
    "get_theme",
    "set_theme",
    "app_info",
    "open_external_url",
    // Catalog downloads
    "list_catalog",
    "download_model",
    "cancel_download",
];
