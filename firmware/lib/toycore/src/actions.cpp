#include "toycore/actions.h"

namespace toy {

const char* action_kind_name(ActionKind kind) {
  switch (kind) {
    case ActionKind::kConnect: return "connect";
    case ActionKind::kCloseSocket: return "close_socket";
    case ActionKind::kSendText: return "send_text";
    case ActionKind::kSendBinary: return "send_binary";
    case ActionKind::kPlayOpus: return "play_opus";
    case ActionKind::kFlushPlayback: return "flush_playback";
    case ActionKind::kSpeakerEnable: return "speaker_enable";
    case ActionKind::kSetLed: return "set_led";
    case ActionKind::kSetVolume: return "set_volume";
    case ActionKind::kSetPitch: return "set_pitch";
    case ActionKind::kPersistResetFlag: return "persist_reset_flag";
    case ActionKind::kReboot: return "reboot";
    case ActionKind::kSleep: return "sleep";
    case ActionKind::kStateChanged: return "state_changed";
    case ActionKind::kNote: return "note";
  }
  return "?";
}

}  // namespace toy
