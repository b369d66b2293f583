"""Local stand-ins for AWS services that the embedded emulator (moto) does not provide."""
