#pragma once
// The app's own words for an engine error. The engine's messages are written for the command
// line: they name flags, environment variables and byte offsets. The app shows a title and a
// plain message in its own terms (its buttons, tabs and pages, what the person typed) and
// keeps the engine's message as the details behind "Show details". Text only.

#include "novaq/io/error.h"

#include <QString>

namespace novaq::ui {

// What the person was doing when the engine failed.
enum class ErrorContext {
    OpenModel,    // opening a file or folder (This computer, File > Open, a finished download)
    HubSearch,    // searching Hugging Face
    HubDetails,   // reading a Hugging Face model's list of files
    HubDownload,  // Use this model: downloading from Hugging Face
    OllamaList,   // listing the Ollama models on this computer
    OllamaPull,   // pulling a model from the Ollama library
    OllamaOpen,   // opening an Ollama model from the list
    UrlDownload,  // fetching a model from a web address
    Estimate,     // the Settings page's estimates
    Compress,     // the compression itself
    Validate,     // Results: Validate
    Export,       // Results: Export...
    TryIt,        // Try it: loading the models or answering
    QualityCheck, // Try it: the quality check
    FitTo,        // Settings: "Fit to" a size or this computer's memory (`typed`: what was typed)
};

struct ErrorWording {
    QString title;   // what happened, in a few words
    QString message; // what happened and what to do, in the app's terms
    QString details; // the engine's own message, as it was
};

// `typed` is what the person gave where it matters: the path opened, the search words, the
// Hugging Face model id, the Ollama model name or the web address.
ErrorWording wordError(ErrorKind kind, const QString& engineMessage, ErrorContext context, const QString& typed = {});

} // namespace novaq::ui
