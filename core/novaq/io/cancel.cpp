#include "novaq/io/cancel.h"

#include "novaq/io/error.h"

namespace novaq {

void CancelToken::throwIfCancelled() const
{
    if (cancelled())
        throw Error(ErrorKind::Cancelled, "cancelled");
}

void checkCancel(const CancelToken* token)
{
    if (token)
        token->throwIfCancelled();
}

} // namespace novaq
