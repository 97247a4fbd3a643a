#include "ui/error_wording.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QRegularExpression>

#include <array>
#include <optional>
#include <string_view>

namespace novaq::ui {

namespace {

QString tr(const char* text) { return QCoreApplication::translate("novaq::ui::ErrorWording", text); }

// What the wording of one error is made from.
struct Facts {
    ErrorKind kind;
    ErrorContext context;
    QString engine;  // as the engine wrote it
    QString lower;   // the same, lower case, for matching
    QString typed;   // what the person gave (path, search words, model id, name, address)
    QString subject; // the thing to name in the message: a file name, a model id, an address
};

bool isDownload(ErrorContext c)
{
    return c == ErrorContext::HubDownload || c == ErrorContext::OllamaPull || c == ErrorContext::UrlDownload;
}

bool isHub(ErrorContext c)
{
    return c == ErrorContext::HubSearch || c == ErrorContext::HubDetails || c == ErrorContext::HubDownload;
}

QString quoted(const QString& s) { return QStringLiteral("\u201c%1\u201d").arg(s); }

// What to press to try the same thing again, in the app's terms.
QString tryAgain(ErrorContext c)
{
    switch (c) {
    case ErrorContext::HubSearch:
        return tr("search again");
    case ErrorContext::HubDetails:
        return tr("select the model again");
    case ErrorContext::HubDownload:
        return tr("press Use this model again");
    case ErrorContext::OllamaList:
        return tr("press Refresh");
    case ErrorContext::OllamaPull:
        return tr("press Pull again");
    case ErrorContext::UrlDownload:
        return tr("press Fetch again");
    case ErrorContext::Compress:
        return tr("press Compress again on the Settings page");
    default:
        return tr("try again");
    }
}

// The engine starts many messages with the file it read ("/x/model.gguf: header: ..."); the
// app names that file by its name. Otherwise the file or folder the person opened, or what
// they typed.
QString subjectOf(const QString& engine, const QString& typed, ErrorContext context)
{
    static const QRegularExpression leadingPath(QStringLiteral("^'?([^\\s:']*[/.][^\\s:']*)'?:\\s"));
    const bool local = context == ErrorContext::OpenModel || context == ErrorContext::Estimate ||
                       context == ErrorContext::Compress || context == ErrorContext::Validate ||
                       context == ErrorContext::Export || context == ErrorContext::TryIt ||
                       context == ErrorContext::QualityCheck;
    if (local) {
        if (const QRegularExpressionMatch m = leadingPath.match(engine); m.hasMatch())
            return quoted(QFileInfo(m.captured(1)).fileName());
    }
    if (typed.isEmpty())
        return local ? tr("The model") : tr("It");
    if (local) {
        const QFileInfo info(typed);
        return quoted(info.fileName().isEmpty() ? typed : info.fileName());
    }
    return quoted(typed);
}

ErrorWording make(const Facts& f, const QString& title, const QString& message) { return {title, message, f.engine}; }

// ---- the specific cases, first match wins ------------------------------------------------

ErrorWording diskFull(const Facts& f)
{
    static const QRegularExpression figures(QStringLiteral("needs (.+?) but only (.+?) is free in"));
    const QRegularExpressionMatch m = figures.match(f.engine);
    const QString what =
        m.hasMatch() ? tr("The download needs %1, but only %2 is free there. ").arg(m.captured(1), m.captured(2))
                     : QString();
    return make(f, tr("Not enough free disk space"),
                what + tr("Free some space, or choose another Hugging Face cache or download folder in "
                          "File > Settings..., then %1.")
                           .arg(tryAgain(f.context)));
}

ErrorWording tokenRejected(const Facts& f)
{
    return make(f, tr("Your Hugging Face token was not accepted"),
                tr("It may have expired or been deleted. Create a new token on the Hugging Face website (your "
                   "profile, Access Tokens), paste it in File > Settings..., then %1.")
                    .arg(tryAgain(f.context)));
}

ErrorWording gatedWaiting(const Facts& f)
{
    return make(f, tr("Your access to this model is not approved yet"),
                tr("%1 needs its authors' permission. Request access on the model's Hugging Face page, wait for "
                   "the approval, then %2.")
                    .arg(f.subject, tryAgain(f.context)));
}

ErrorWording gated(const Facts& f)
{
    return make(f, tr("This model needs its authors' permission"),
                tr("Request access on the model's Hugging Face page, add your Hugging Face token in "
                   "File > Settings..., then %1.")
                    .arg(tryAgain(f.context)));
}

ErrorWording rateLimited(const Facts& f)
{
    return make(f, tr("Hugging Face is limiting requests"),
                tr("Wait a few minutes, then %1. A Hugging Face token in File > Settings... raises the limit.")
                    .arg(tryAgain(f.context)));
}

ErrorWording hubOffline(const Facts& f)
{
    return make(f, tr("Hugging Face is set to work offline"),
                tr("NOVAQ Studio was started with Hugging Face's offline mode turned on, so it can only use models "
                   "that are already downloaded. Start it without offline mode to search and download."));
}

ErrorWording hubWrongAnswer(const Facts& f)
{
    return make(f, tr("Hugging Face gave an answer NOVAQ Studio does not understand"),
                tr("Wait a few minutes, then %1. If you reach Hugging Face through a mirror or a proxy, check "
                   "that it works.")
                    .arg(tryAgain(f.context)));
}

ErrorWording repoNotFound(const Facts& f)
{
    return make(f, tr("Hugging Face has no model with this name"),
                tr("%1 was not found. Check the name; a private model also needs your Hugging Face token in "
                   "File > Settings....")
                    .arg(f.subject));
}

ErrorWording fileNotInRepo(const Facts& f)
{
    return make(f, tr("This file is not in the model"),
                tr("The model's files may have changed. Select the model again to see its current files, then "
                   "press Use this model."));
}

ErrorWording chooseAFile(const Facts& f)
{
    return make(f, tr("Choose which file of the model to use"),
                tr("%1 holds several model files and no index that joins them. Select one in the list of files, "
                   "then press Use this model.")
                    .arg(f.subject));
}

ErrorWording noWeightsInRepo(const Facts& f)
{
    return make(f, tr("No model file NOVAQ Studio can read was found"),
                tr("%1 has no safetensors, PyTorch or GGUF weights at its top level. Select a model file in the "
                   "list of files, then press Use this model, or choose another model.")
                    .arg(f.subject));
}

ErrorWording unreachable(const Facts& f)
{
    if (isHub(f.context))
        return make(f, tr("Hugging Face could not be reached"),
                    tr("Check your internet connection, then %1.").arg(tryAgain(f.context)));
    if (f.context == ErrorContext::OllamaPull)
        return make(f, tr("The Ollama library could not be reached"),
                    tr("Check your internet connection and the model name, then %1.").arg(tryAgain(f.context)));
    return make(f, tr("The server could not be reached"),
                tr("Check your internet connection and the address %1, then %2.").arg(f.subject, tryAgain(f.context)));
}

ErrorWording notAWebAddress(const Facts& f)
{
    return make(f, tr("This is not a web address"),
                tr("%1 does not start with http:// or https://. Paste the full address of a model file, such as "
                   "https://example.com/model.gguf. For a file on this computer, use Open a file... on the This "
                   "computer tab.")
                    .arg(f.typed.isEmpty() ? tr("The address") : quoted(f.typed)));
}

ErrorWording truncated(const Facts& f)
{
    if (f.context == ErrorContext::Validate || f.context == ErrorContext::Export ||
        f.subject.endsWith(QStringLiteral(".novaq\u201d")))
        return make(f, tr("The compressed file is incomplete"),
                    tr("%1 ends before all of its data; it was cut off while it was written or copied. Compress "
                       "the model again to get a whole file.")
                        .arg(f.subject));
    return make(f, tr("The file is incomplete"),
                tr("%1 ends before all of its data; the download or copy probably stopped early. Download it "
                   "again, then open it again; or choose another model.")
                    .arg(f.subject));
}

ErrorWording emptyFolder(const Facts& f)
{
    return make(f, tr("This folder is empty"),
                tr("%1 holds no files. Choose the folder that holds the model's files with Open a folder..., or "
                   "open the model file itself with Open a file....")
                    .arg(f.subject));
}

ErrorWording noModelInFolder(const Facts& f)
{
    return make(f, tr("This folder holds no model"),
                tr("None of the files in %1 is a model NOVAQ Studio reads (safetensors, GGUF, PyTorch, ONNX or "
                   "llama2.c). Choose the folder that holds the model, or open the model file itself with "
                   "Open a file....")
                    .arg(f.subject));
}

ErrorWording severalModels(const Facts& f)
{
    return make(f, tr("This folder holds more than one model"),
                tr("Open the one you want with Open a file... on the This computer tab. Show details lists the "
                   "models found in %1.")
                    .arg(f.subject));
}

ErrorWording notFound(const Facts& f)
{
    return make(f, tr("The model was not found"),
                tr("%1 is not there any more; it may have been moved or deleted. Choose it again with Open a "
                   "file... or Open a folder....")
                    .arg(f.subject));
}

ErrorWording demoMissing(const Facts& f)
{
    return make(f, tr("The demo model is missing"),
                tr("This copy of NOVAQ Studio has no demo model. Open a model of your own with Open a file... or "
                   "Open a folder..., or get one on the Hugging Face tab."));
}

ErrorWording lfsPointer(const Facts& f)
{
    return make(f, tr("Only a placeholder of the model was downloaded"),
                tr("%1 is a small pointer to the real file, not the model itself. Download the real file, for "
                   "example on the Hugging Face tab, and open it.")
                    .arg(f.subject));
}

ErrorWording ollamaUnknown(const Facts& f)
{
    return make(f, tr("The Ollama library has no model with this name"),
                tr("%1 was not found. Check the name and the tag, such as llama3.2:1b; the Ollama website lists "
                   "the models.")
                    .arg(f.subject));
}

ErrorWording ollamaPrivate(const Facts& f)
{
    return make(f, tr("This Ollama model is private"),
                tr("The library asks for a login to give %1. NOVAQ Studio can only pull public models; choose "
                   "another one.")
                    .arg(f.subject));
}

ErrorWording ollamaMissing(const Facts& f)
{
    return make(f, tr("This Ollama model's files are missing"),
                tr("The weights of %1 are not on this computer. Pull it again with the field above, or choose "
                   "another model.")
                    .arg(f.subject));
}

ErrorWording outputIsInput(const Facts& f)
{
    return make(f, tr("The output file is the model itself"),
                tr("Compressing would overwrite the model. Choose another output file on the Settings page."));
}

ErrorWording outputFolderMissing(const Facts& f)
{
    return make(f, tr("The output folder does not exist"),
                tr("Choose another output file on the Settings page, or create the folder first."));
}

ErrorWording notAPreset(const Facts& f)
{
    return make(f, tr("These bits per weight are not available"),
                tr("Choose one of the three cards, or another value on the slider, on the Settings page."));
}

ErrorWording badThreads(const Facts& f)
{
    return make(f, tr("The number of threads is not valid"),
                tr("Set Threads under Advanced on the Settings page, or in File > Settings...."));
}

ErrorWording beyondF16(const Facts& f)
{
    return make(f, tr("Some weights are too large for a 16-bit export"),
                tr("The model holds values beyond what 16-bit numbers can hold, so it cannot be exported as "
                   "16-bit safetensors. The .novaq file itself is fine."));
}

ErrorWording textTooShort(const Facts& f)
{
    static const QRegularExpression counts(QStringLiteral("gives (\\d+) tokens.*needs? \\((\\d+)\\)"));
    const QRegularExpressionMatch m = counts.match(f.engine);
    const QString figures =
        m.hasMatch() ? tr("It makes %1 tokens and the check needs at least %2. ").arg(m.captured(1), m.captured(2))
                     : QString();
    return make(f, tr("The text is too short"),
                figures + tr("Choose a longer text for the quality check, or use the app's sample text."));
}

using Make = ErrorWording (*)(const Facts&);

struct Rule {
    std::array<std::string_view, 4> anyOf; // lower case; empty entries are ignored
    Make make;
    bool (*applies)(ErrorContext) = nullptr; // nullptr: in every context
};

bool inHub(ErrorContext c) { return isHub(c); }
bool inOllama(ErrorContext c) { return c == ErrorContext::OllamaPull || c == ErrorContext::OllamaOpen; }
bool inQualityCheck(ErrorContext c) { return c == ErrorContext::QualityCheck; }

// Matched against the engine's message in order; each line is one thing the app words its own way.
const Rule kRules[] = {
    {{"is free in"}, diskFull},
    {{"token was rejected"}, tokenRejected},
    {{"has no access yet"}, gatedWaiting},
    {{"is a gated model"}, gated},
    {{"rate-limiting"}, rateLimited},
    {{"hf_hub_offline is set"}, hubOffline},
    {{"is hf_endpoint a hub"}, hubWrongAnswer},
    {{"pick one with --file"}, chooseAFile, inHub},
    {{"has no model weights"}, noWeightsInRepo, inHub},
    {{"--list` to see its files"}, fileNotInRepo, inHub},
    {{"not found on "}, repoNotFound, inHub},
    {{"is not in the registry"}, ollamaUnknown, inOllama},
    {{"asks for authentication"}, ollamaPrivate, inOllama},
    {{"are not in an ollama store"}, ollamaMissing, inOllama},
    {{"cannot reach", "could not connect", "could not resolve", "timed out"}, unreachable},
    {{"an invalid url", "is not an http"}, notAWebAddress},
    {{"truncated", "runs past the end", "cut off by the end", "remain in the file"}, truncated},
    {{"is empty; put"}, emptyFolder},
    {{"no model found in the folder"}, noModelInFolder},
    {{"holds several"}, severalModels},
    {{"no such file or folder"}, notFound},
    {{"demo model was not found"}, demoMissing},
    {{"git lfs pointer"}, lfsPointer},
    {{"is the input model"}, outputIsInput},
    {{"choose another --output"}, outputFolderMissing},
    {{"is not a preset"}, notAPreset},
    {{"--threads must"}, badThreads},
    {{"f16 range"}, beyondF16},
    {{"use a longer text"}, textTooShort, inQualityCheck},
};

// ---- one wording per kind when no case above fits ------------------------------------------

ErrorWording generic(const Facts& f)
{
    const ErrorContext c = f.context;
    switch (f.kind) {
    case ErrorKind::Cancelled:
        return make(f, tr("Cancelled"), tr("It was stopped before it finished; nothing was changed."));
    case ErrorKind::Network:
        if (c == ErrorContext::HubSearch)
            return make(f, tr("Hugging Face could not be searched"),
                        tr("The search for %1 did not work. Check your internet connection, then search again.")
                            .arg(f.subject));
        if (c == ErrorContext::HubDetails)
            return make(f, tr("The model's details could not be read"),
                        tr("Check your internet connection, then select the model again."));
        if (c == ErrorContext::OllamaPull)
            return make(
                f, tr("The pull failed"),
                tr("%1 could not be pulled. Check your internet connection, then press Pull again.").arg(f.subject));
        return make(f, tr("The download failed"),
                    tr("%1 could not be downloaded. Check your internet connection, then %2; the part already "
                       "received is kept.")
                        .arg(f.subject, tryAgain(c)));
    case ErrorKind::InvalidArgument:
        if (c == ErrorContext::QualityCheck)
            return make(f, tr("The text is too short"),
                        tr("Choose a longer text for the quality check, or use the app's sample text."));
        if (c == ErrorContext::HubSearch)
            return make(f, tr("Hugging Face could not be searched"),
                        tr("The search for %1 did not work. Try other words.").arg(f.subject));
        if (c == ErrorContext::UrlDownload)
            return make(f, tr("This web address cannot be fetched"),
                        tr("Check the address %1: it should be the http:// or https:// address of one model file.")
                            .arg(f.subject));
        if (c == ErrorContext::OllamaPull || c == ErrorContext::OllamaOpen)
            return make(f, tr("This Ollama model cannot be used"),
                        tr("Check the name and the tag of %1, such as llama3.2:1b.").arg(f.subject));
        if (isHub(c))
            return make(f, tr("This Hugging Face model cannot be used"),
                        tr("Choose another model, or select a model file in the list of files."));
        return make(f, tr("A setting is not valid"),
                    tr("Check the settings on the Settings page, then %1.").arg(tryAgain(c)));
    case ErrorKind::InvalidInput:
        if (c == ErrorContext::QualityCheck)
            return make(f, tr("The quality check could not run"),
                        tr("Show details says why. Choose another text, such as a plain-text file (.txt), or use "
                           "the app's sample text."));
        if (c == ErrorContext::TryIt)
            return make(f, tr("The model could not be loaded"),
                        tr("%1 is damaged or not complete. Open it again on the Model page, or choose another "
                           "model.")
                            .arg(f.subject));
        if (c == ErrorContext::OpenModel && QFileInfo(f.typed).isDir())
            return make(f, tr("This folder holds no model NOVAQ Studio can read"),
                        tr("The files in %1 are damaged or not in a format NOVAQ Studio reads (safetensors, GGUF, "
                           "PyTorch, ONNX). Choose another folder, or download the model again.")
                            .arg(f.subject));
        return make(f, tr("This file is not a model NOVAQ Studio can read"),
                    tr("%1 is damaged or not in a format NOVAQ Studio reads (safetensors, GGUF, PyTorch, ONNX). "
                       "Download it again, or choose another model.")
                        .arg(f.subject));
    case ErrorKind::Unsupported:
        if (c == ErrorContext::TryIt || c == ErrorContext::QualityCheck)
            return make(f, tr("NOVAQ Studio cannot run this model yet"),
                        tr("It can still be compressed; trying it and checking its quality need a model the app "
                           "can run. Show details says what is missing."));
        return make(f, tr("This model is not supported yet"),
                    tr("NOVAQ Studio cannot use %1 yet. Show details says what is missing; choose another model.")
                        .arg(f.subject));
    case ErrorKind::Io:
        if (c == ErrorContext::Compress)
            return make(f, tr("The compressed file could not be written"),
                        tr("Check that the disk has free space and that you may write to the output folder, or "
                           "choose another output file on the Settings page."));
        if (c == ErrorContext::Export)
            return make(f, tr("The export could not be written"),
                        tr("Check that the disk has free space, or press Export... and choose another place."));
        if (c == ErrorContext::QualityCheck)
            return make(
                f, tr("The text could not be read"),
                tr("Check that %1 is still there and that you may read it, or choose another text.").arg(f.subject));
        if (isDownload(c))
            return make(f, tr("The download could not be saved"),
                        tr("Check that the disk has free space and the folders in File > Settings..., then %1.")
                            .arg(tryAgain(c)));
        return make(f, tr("The model could not be read"),
                    tr("Check that %1 is still there and that you may read it, then %2.").arg(f.subject, tryAgain(c)));
    case ErrorKind::Corrupt:
        return make(f, tr("This .novaq file is damaged"),
                    tr("%1 does not pass its checks. Compress the model again to get a good file.").arg(f.subject));
    case ErrorKind::Internal:
        return make(f, tr("NOVAQ Studio made a mistake"),
                    tr("This is a bug in the app, not something you did. Copy details and report it; then %1.")
                        .arg(tryAgain(c)));
    }
    return make(f, tr("Something went wrong"), tr("Show details says what happened; %1.").arg(tryAgain(c)));
}

} // namespace

// "Fit to" on the Settings page: the engine names --fit-memory and bytes; the app names the
// field, what was typed and the size that would do, in the units people type.
std::optional<ErrorWording> fitToWording(const Facts& f)
{
    if (f.context != ErrorContext::FitTo)
        return std::nullopt;
    if (f.lower.contains(QLatin1String("expects a size")))
        return make(f, tr("\"%1\" is not a size").arg(f.typed),
                    tr("Type a number with a unit, such as 2.5 MB, 800 MB or 8 GB (MiB and GiB work too)."));
    static const QRegularExpression least(QStringLiteral("give at least ([0-9.]+)([MG]B)"));
    if (const QRegularExpressionMatch m = least.match(f.engine); m.hasMatch())
        return make(f, tr("The model does not fit in %1").arg(f.typed),
                    tr("Even the smallest setting needs about %1 %2 to run. Give more memory, or a shorter "
                       "context.")
                        .arg(m.captured(1), m.captured(2)));
    static const QRegularExpression range(QStringLiteral("reachable range is [0-9,]+ to [0-9,]+ bytes \\(([^)]+) "
                                                         "to ([^)]+)\\)"));
    if (const QRegularExpressionMatch m = range.match(f.engine); m.hasMatch()) {
        const QString from = m.captured(1), to = m.captured(2).section(QLatin1Char(','), 0, 0);
        return make(f,
                    f.lower.contains(QLatin1String("smaller than this model"))
                        ? tr("%1 is too small for this model").arg(f.typed)
                        : tr("%1 is more than this model needs").arg(f.typed),
                    tr("This model can be made from %1 to %2. Type a size in that range.").arg(from, to));
    }
    if (f.kind == ErrorKind::Unsupported)
        return make(f, tr("Fit to memory needs a model the app can run"),
                    tr("NOVAQ Studio cannot run this model yet, so it cannot tell what running it takes. Fit to a "
                       "size instead."));
    return std::nullopt;
}

ErrorWording wordError(ErrorKind kind, const QString& engineMessage, ErrorContext context, const QString& typed)
{
    Facts f{kind, context, engineMessage, engineMessage.toLower(), typed.trimmed(), {}};
    if (std::optional<ErrorWording> fit = fitToWording(f))
        return *fit;
    f.subject = subjectOf(engineMessage, f.typed, context);
    for (const Rule& rule : kRules) {
        if (rule.applies && !rule.applies(context))
            continue;
        for (std::string_view needle : rule.anyOf)
            if (!needle.empty() && f.lower.contains(QLatin1String(needle.data(), qsizetype(needle.size()))))
                return rule.make(f);
    }
    return generic(f);
}

} // namespace novaq::ui
