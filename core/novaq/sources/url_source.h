#pragma once
// A model named by an http(s) URL: downloaded (resumably) into a folder under a file name
// taken from Content-Disposition or the URL path, sanitized so that it can never leave that
// folder. The reader is chosen later by content, not by the name.

#include "novaq/io/cancel.h"
#include "novaq/net/downloader.h"

#include <filesystem>
#include <string>

namespace novaq::sources {

// A single safe file name: no folders, no leading dots, only [A-Za-z0-9._+-] (others become
// '_'), at most 200 bytes; "download" when nothing is left.
std::string sanitizeFileName(const std::string& name);

// The filename (or RFC 5987 filename*) parameter of a Content-Disposition value, unsanitized.
std::string fileNameFromContentDisposition(const std::string& header);

// The last path segment of a URL, percent-decoded, unsanitized.
std::string fileNameFromUrl(const std::string& url);

// $XDG_CACHE_HOME/novaq/downloads, else ~/.cache/novaq/downloads.
std::filesystem::path defaultDownloadFolder();

struct UrlDownload {
    std::filesystem::path file;
    bool reused = false; // a complete file of that name and size was already there
    uint64_t size = 0;
};

// HEAD (for the name and size; servers that refuse HEAD are fine), then a resumable
// download into `folder`. Throws Error(InvalidArgument) for a URL that is not http(s).
UrlDownload downloadUrl(const std::string& url, const std::filesystem::path& folder,
                        const net::DownloadSettings& settings, net::DownloadSink* sink, const CancelToken* cancel);

} // namespace novaq::sources
