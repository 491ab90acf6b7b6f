"""ESP32 voice toys speaking the Elato device protocol on ``/ws/esp32``."""
